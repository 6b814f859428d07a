"""Write a synthetic cohort of case sheets (JSON array) for timing `haip-kg evaluate`.

Usage: python benchmarks/make_cohort.py N OUT.json [--seed S]
Cases are drawn from every allowed value of the decision-relevant keys, so that all rules do work.
"""

from __future__ import annotations

import argparse
import json
import random
from typing import Any

SITES = ["colon", "rectosigmoid", "rectum", "colorectal-unspecified", "appendix", "anal-canal", "liver"]
HISTOLOGIES = ["adenocarcinoma", "mucinous-adenocarcinoma", "signet-ring-cell", "neuroendocrine"]
IMAGING = ["ct-chest", "ct-abdomen-pelvis", "mri-liver", "mri-abdomen", "pet-ct"]


def case(rng: random.Random, index: int) -> dict[str, Any]:
    def maybe(value: Any, p: float = 0.85) -> Any:
        return value if rng.random() < p else None

    sheet: dict[str, Any] = {
        "id": f"synthetic-{index:06d}",
        "age": rng.randint(30, 85),
        "ecog": rng.randint(0, 2),
        "primary_site": maybe(rng.choice(SITES[:4] * 4 + SITES[4:])),
        "histology": maybe(rng.choice(HISTOLOGIES[:1] * 6 + HISTOLOGIES[1:])),
        "liver_metastases": maybe(rng.random() < 0.95),
        "liver_mets_count": maybe(rng.randint(1, 12), 0.6),
        "resectability": maybe(rng.choice(["unresectable"] * 3 + ["resectable", "borderline"])),
        "resectability_assessed_by": maybe(rng.choice(["mdt", "hpb-surgeon", "other"])),
        "liver_resection": maybe(rng.choice(["none", "none", "planned", "done"])),
        "extrahepatic_disease": maybe(rng.choice(["absent", "absent", "absent", "present", "indeterminate"])),
        "staging_imaging": maybe(rng.sample(IMAGING, rng.randint(0, 3))),
        "enrolled_in_haip_trial": maybe(rng.random() < 0.1),
        "systemic_lines": maybe(
            [
                {
                    "regimen": rng.choice(["FOLFOX", "CAPOX", "FOLFIRI"]),
                    "setting": rng.choice(["metastatic", "metastatic", "adjuvant"]),
                    "response": rng.choice(["CR", "PR", "SD", "PD"]),
                    "progressed": rng.random() < 0.5,
                }
                for _ in range(rng.randint(0, 3))
            ]
        ),
        "planned_haip": maybe(rng.random() < 0.8),
        "planned_concurrent_systemic": maybe(rng.random() < 0.9),
        "bilirubin_total": {"value": round(rng.uniform(0.3, 2.0), 1), "unit": "mg/dL", "uln": 1.2},
    }
    if sheet["liver_resection"] == "done":
        sheet["resection_margin"] = maybe(rng.choice(["R0", "R0", "R1", "R2"]))
        sheet["months_since_liver_resection"] = maybe(rng.choice([1, 2, 3, 5]))
    if sheet["extrahepatic_disease"] == "present":
        sheet["extrahepatic_sites"] = rng.sample(
            ["lung", "peritoneum", "portal-nodes", "bone"], rng.randint(1, 2)
        )
    for service in (
        "hpb_surgery",
        "medical_oncology",
        "interventional_radiology",
        "nursing",
        "nuclear_medicine",
    ):
        sheet[f"centre_{service}"] = maybe(rng.choice(["yes"] * 8 + ["affiliated", "no"]), 0.95)
    return {k: v for k, v in sheet.items() if v is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=2014)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump([case(rng, i) for i in range(args.n)], out)


if __name__ == "__main__":
    main()
