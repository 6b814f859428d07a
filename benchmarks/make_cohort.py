"""Write a cohort of case sheets (JSON array) for timing `haip-kg evaluate`.

Usage: python benchmarks/make_cohort.py N OUT.json [--seed S] [--realistic] [--describe]

The default (synthetic) cohort draws every allowed value of the decision-relevant keys from small sets,
so that all rules do work; inputs repeat far more than real records do.
`--realistic` draws what real records look like: one-decimal measurements (labs, largest metastasis,
liver involvement, months since resection / since the end of a line, disease-free interval), free-text
regimens in varied spellings and combinations ("mFOLFOX6", "XELOX+panitumumab", ...), NCT trial
numbers, partly filled sheets (each patient its own fill rate; about 5% keep two or three facts), and
INVALID_SHARE (3%) of cases broken on purpose in one place (an unknown enumerated value, a negative
count, a one-decimal age, a number or boolean written as text, a lab without unit or in a wrong unit,
an unknown key), which `haip-kg evaluate` refuses. `age` stays a whole number in valid cases: the
contract (case-sheet spec, shapes) takes age in whole years and refuses a decimal.
`--describe` prints, on stderr, how many distinct values each key has in the written cohort.
Both cohorts are deterministic for a seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

SITES = ["colon", "rectosigmoid", "rectum", "colorectal-unspecified", "appendix", "anal-canal", "liver"]
HISTOLOGIES = ["adenocarcinoma", "mucinous-adenocarcinoma", "signet-ring-cell", "neuroendocrine"]
IMAGING = ["ct-chest", "ct-abdomen-pelvis", "mri-liver", "mri-abdomen", "pet-ct"]


CENTRE_SERVICES = (
    "hpb_surgery",
    "medical_oncology",
    "interventional_radiology",
    "nursing",
    "nuclear_medicine",
)
"""The programme's services, as the case sheet's `centre_<service>` keys name them (in drawing order)."""


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
    for service in CENTRE_SERVICES:
        sheet[f"centre_{service}"] = maybe(rng.choice(["yes"] * 8 + ["affiliated", "no"]), 0.95)
    return {k: v for k, v in sheet.items() if v is not None}


# ---- the realistic cohort -------------------------------------------------------------------------
# Everything below draws clinically plausible values with the variety of real records: one-decimal
# measurements, free-text regimens, trial numbers, partly filled sheets and a few invalid ones.

INVALID_SHARE = 0.03
"""Share of realistic cases made invalid on purpose (one defect each, which the input contract refuses)."""

BACKBONES = [
    ("FOLFOX", 10),
    ("mFOLFOX6", 8),
    ("FOLFOX4", 2),
    ("FOLFOX-6", 1),
    ("Folfox", 2),
    ("folfox", 1),
    ("CAPOX", 7),
    ("XELOX", 4),
    ("CapeOx", 2),
    ("FOLFIRI", 8),
    ("Folfiri", 1),
    ("FOLFOXIRI", 3),
    ("mFOLFOXIRI", 1),
    ("capecitabine", 3),
    ("Capecitabine", 1),
    ("5-FU/LV", 2),
    ("5FU/leucovorin", 1),
    ("irinotecan", 1),
    ("FOLFIRINOX", 1),
    ("trifluridine/tipiracil", 1),
    ("TAS-102", 1),
]
BIOLOGICS = [
    ("bevacizumab", 10),
    ("Bevacizumab", 2),
    ("bev", 1),
    ("panitumumab", 4),
    ("cetuximab", 4),
    ("Cetuximab", 1),
    ("aflibercept", 1),
    ("ramucirumab", 1),
]
JOINERS = [" + ", "+", " / ", " and ", " with ", "/"]
FIRST_LINE_SETTINGS = [("metastatic", 14), ("adjuvant", 5), ("neoadjuvant", 1)]
EXTRAHEPATIC_SITES = [
    "lung",
    "peritoneum",
    "distant-nodes",
    "portal-nodes",
    "bone",
    "brain",
    "adrenal",
    "ovary",
    "local-recurrence",
    "other",
]
# (key, units with a factor from the first unit, low, high, upper limit of normal in the first unit)
LABS = [
    ("bilirubin_total", [("mg/dL", 1.0), ("umol/L", 17.1)], 0.2, 3.5, 1.2),
    ("ast", [("U/L", 1.0)], 10.0, 180.0, 40.0),
    ("alt", [("U/L", 1.0)], 7.0, 200.0, 41.0),
    ("alp", [("U/L", 1.0)], 40.0, 600.0, 129.0),
    ("albumin", [("g/dL", 1.0), ("g/L", 10.0)], 2.4, 5.0, None),
    ("platelets", [("10*9/L", 1.0)], 70.0, 480.0, None),
    ("anc", [("10*9/L", 1.0)], 0.8, 9.5, None),
    ("creatinine", [("mg/dL", 1.0), ("umol/L", 88.4)], 0.4, 2.2, 1.2),
    ("cea", [("ng/mL", 1.0), ("ug/L", 1.0)], 0.5, 900.0, 5.0),
]
"""Every defect below is something the input contract refuses; each takes a valid sheet and returns it
broken in one place (a key that a partly filled sheet lacks is added with the bad value)."""
DEFECTS: list[tuple[str, Callable[[random.Random, dict[str, Any]], None]]] = [
    ("unknown primary_site", lambda r, s: s.update(primary_site=r.choice(["sigmoid", "Colon ", "caecum"]))),
    ("unknown histology", lambda r, s: s.update(histology=r.choice(["adenoCA", "mucinous", "NOS"]))),
    ("unknown resectability", lambda r, s: s.update(resectability=r.choice(["maybe", "potentially"]))),
    ("unknown centre value", lambda r, s: s.update(centre_nursing=r.choice(["partner", "Y", "n/a"]))),
    ("negative liver_mets_count", lambda r, s: s.update(liver_mets_count=-r.randint(1, 3))),
    ("negative months", lambda r, s: s.update(months_since_liver_resection=-round(r.uniform(0.1, 6), 1))),
    ("involvement over 100", lambda r, s: s.update(liver_involvement_pct=round(r.uniform(100.1, 140), 1))),
    ("age with a decimal", lambda r, s: s.update(age=round(r.randint(30, 85) + r.randint(1, 9) / 10, 1))),
    ("ecog as text", lambda r, s: s.update(ecog=str(r.randint(0, 2)))),
    ("boolean as text", lambda r, s: s.update(planned_haip=r.choice(["yes", "Y", "true"]))),
    ("lab without unit", lambda r, s: s.update(bilirubin_total={"value": round(r.uniform(0.3, 2), 1)})),
    (
        "lab in a wrong unit",
        lambda r, s: s.update(albumin={"value": round(r.uniform(3, 4.5), 1), "unit": "mg/dL"}),
    ),
    ("unknown key", lambda r, s: s.update(tumour_grade=r.choice(["G1", "G2", "G3"]))),
]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in pairs], [weight for _, weight in pairs])[0]


def _one(rng: random.Random, low: float, high: float) -> float:
    """A one-decimal value between low and high, skewed towards low (as most measurements are)."""
    return round(low + (high - low) * rng.betavariate(1.3, 3.5), 1)


def regimen(rng: random.Random) -> str:
    """A regimen as clinicians write it: a backbone, often with a biologic, in varied spelling."""
    name = _weighted(rng, BACKBONES)
    if rng.random() < 0.45:
        name += rng.choice(JOINERS) + _weighted(rng, BIOLOGICS)
    return name


def _lab(
    rng: random.Random, low: float, high: float, units: list[tuple[str, float]], uln: float | None
) -> dict[str, Any]:
    unit, factor = rng.choice(units)
    measured = low + (high - low) * rng.betavariate(1.3, 3.5)
    lab: dict[str, Any] = {"value": round(measured * factor, 1), "unit": unit}
    if uln is not None and rng.random() < 0.6:
        lab["uln"] = round(uln * factor, 1)
    return lab


def _systemic_line(rng: random.Random, setting: str) -> dict[str, Any]:
    line: dict[str, Any] = {
        "regimen": regimen(rng),
        "setting": setting,
        "response": rng.choices(["CR", "PR", "SD", "PD"], [1, 4, 4, 3])[0],
        "progressed": rng.random() < 0.55,
        "stopped_for_toxicity": rng.random() < 0.12,
        "months_since_end": _one(rng, 0.2, 60.0),
    }
    return {k: v for k, v in line.items() if rng.random() < 0.85 or k == "regimen"}


def realistic_sheet(rng: random.Random, index: int) -> dict[str, Any]:
    """One plausible, valid case sheet, then partly emptied: every patient has their own fill rate, and
    about 5% keep only two or three facts."""
    female = rng.random() < 0.42
    synchronous = rng.random() < 0.5
    resection = rng.choices(["none", "planned", "done"], [6, 1, 3])[0]
    extrahepatic = rng.choices(["absent", "present", "indeterminate"], [7, 2, 1])[0]
    enrolled = rng.random() < 0.08
    lines = [
        _systemic_line(rng, _weighted(rng, FIRST_LINE_SETTINGS) if n == 0 else "metastatic")
        for n in range(rng.choices([0, 1, 2, 3, 4], [2, 4, 3, 2, 1])[0])
    ]
    sheet: dict[str, Any] = {
        "age": max(22, min(92, round(rng.gauss(62, 11)))),
        "sex": "female" if female else rng.choices(["male", "other"], [99, 1])[0],
        "ecog": rng.choices([0, 1, 2, 3], [45, 40, 12, 3])[0],
        "primary_site": rng.choices(
            ["colon", "rectosigmoid", "rectum", "colorectal-unspecified", "appendix", "other"],
            [50, 10, 28, 8, 2, 2],
        )[0],
        "histology": rng.choices(
            ["adenocarcinoma", "mucinous-adenocarcinoma", "signet-ring-cell", "neuroendocrine", "other"],
            [85, 9, 2, 2, 2],
        )[0],
        "primary_status": rng.choices(["resected", "in-situ"], [7, 3])[0],
        "primary_node_positive": rng.random() < 0.6,
        "liver_metastases": rng.random() < 0.97,
        "liver_mets_count": min(40, max(1, round(rng.lognormvariate(1.3, 0.8)))),
        "largest_liver_met_cm": _one(rng, 0.4, 16.0),
        "liver_involvement_pct": _one(rng, 0.5, 85.0),
        "synchronous": synchronous,
        "resectability": rng.choices(
            ["unresectable", "resectable", "borderline", ["unresectable", "borderline"]], [55, 20, 22, 3]
        )[0],
        "resectability_assessed_by": rng.choices(["mdt", "hpb-surgeon", "other"], [6, 3, 1])[0],
        "liver_resection": resection,
        "ablation": rng.random() < 0.15,
        "extrahepatic_disease": extrahepatic,
        "prior_extrahepatic_disease_treated": rng.random() < 0.05,
        "staging_imaging": rng.sample(IMAGING, rng.randint(1, 4)),
        "enrolled_in_haip_trial": enrolled,
        "systemic_lines": lines,
        "planned_haip": rng.random() < 0.75,
        "planned_concurrent_systemic": rng.random() < 0.85,
        "portal_vein_thrombosis": rng.random() < 0.03,
        "prior_liver_radiation": rng.random() < 0.04,
        "ascites": rng.random() < 0.04,
        "cirrhosis": rng.random() < 0.03,
    }
    if not synchronous:
        sheet["disease_free_interval_months"] = round(12.0 + _one(rng, 0.0, 72.0), 1)
    if resection == "done":
        sheet["resection_margin"] = rng.choices(["R0", "R1", "R2"], [7, 2, 1])[0]
        sheet["months_since_liver_resection"] = _one(rng, 0.3, 48.0)
        sheet["recurrence_since_resection"] = rng.random() < 0.4
    if extrahepatic != "absent":
        sheet["extrahepatic_sites"] = rng.sample(EXTRAHEPATIC_SITES, rng.choices([1, 2, 3], [6, 3, 1])[0])
    if enrolled or rng.random() < 0.03:
        sheet["trial_id"] = f"NCT0{rng.randint(0, 9999999):07d}"
    if female and sheet["age"] < 55:
        sheet["pregnant"] = rng.random() < 0.01
    for service in CENTRE_SERVICES:
        sheet[f"centre_{service}"] = rng.choices(["yes", "affiliated", "no"], [8, 1, 1])[0]
    for key, units, low, high, uln in LABS:
        sheet[key] = _lab(rng, low, high, units, uln)
    fill = 0.12 if rng.random() < 0.05 else rng.uniform(0.45, 1.0)
    kept = {k: v for k, v in sheet.items() if rng.random() < fill}
    return {"id": f"realistic-{index:06d}", **kept}


def realistic_case(rng: random.Random, index: int) -> tuple[dict[str, Any], str | None]:
    """A realistic case sheet and, for the INVALID_SHARE that are broken on purpose, the defect's name."""
    sheet = realistic_sheet(rng, index)
    if rng.random() >= INVALID_SHARE:
        return sheet, None
    name, damage = rng.choice(DEFECTS)
    damage(rng, sheet)
    return sheet, name


def cohort(n: int, seed: int, realistic: bool = False) -> list[dict[str, Any]]:
    """The n case sheets of a cohort, the same for the same seed."""
    rng = random.Random(seed)
    if realistic:
        return [realistic_case(rng, i)[0] for i in range(n)]
    return [case(rng, i) for i in range(n)]


def _leaves(value: Any, key: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, f"{key}.{name}")
    elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
        for item in value:
            yield from _leaves(item, f"{key}[]")
    else:
        yield key, json.dumps(value, sort_keys=True)


def describe(sheets: Iterable[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """For each key (nested ones dotted, list items as `key[].field`): (sheets or items that give it,
    distinct values)."""
    given: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    for sheet in sheets:
        for name, item in sheet.items():
            for key, value in _leaves(item, name):
                given[key] += 1
                values.setdefault(key, set()).add(value)
    return {key: (given[key], len(values[key])) for key in sorted(values)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", type=int)
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=2014)
    parser.add_argument("--realistic", action="store_true", help="realistic variety (see above)")
    parser.add_argument("--describe", action="store_true", help="print distinct values per key (stderr)")
    args = parser.parse_args()
    sheets = cohort(args.n, args.seed, args.realistic)
    with open(args.out, "w", encoding="utf-8") as out:
        json.dump(sheets, out)
    if args.describe:
        table = describe(sheets)
        width = max(map(len, table))
        print(f"{'key':<{width}} {'given':>8} {'distinct':>8}", file=sys.stderr)
        for key, (count, distinct) in table.items():
            print(f"{key:<{width}} {count:>8} {distinct:>8}", file=sys.stderr)
        records = len({json.dumps({k: v for k, v in s.items() if k != "id"}, sort_keys=True) for s in sheets})
        print(f"distinct records (without id): {records} of {len(sheets)}", file=sys.stderr)


if __name__ == "__main__":
    main()
