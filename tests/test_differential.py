"""Differential test: several hundred randomised case sheets decided by haip-kg and by an independent
implementation of the policy (tests/policy_oracle.py, written from decision-policy.md alone by someone who
did not see this code) must agree on the verdict, the conditions, every status and every `met`.
(tests/test_outputs.py compares every other output field on the same cases.)"""

from __future__ import annotations

import random
from typing import Any

import policy_oracle
import pytest
from conftest import decide_sheets

KEYS: dict[str, list[Any]] = {
    "primary_site": [
        "colon",
        "rectosigmoid",
        "rectum",
        "colorectal-unspecified",
        "appendix",
        "anal-canal",
        "liver",
    ],
    "histology": ["adenocarcinoma", "mucinous-adenocarcinoma", "signet-ring-cell", "neuroendocrine", "other"],
    "liver_metastases": [True, False],
    "liver_mets_count": [0, 1, 5],
    "resectability": [
        "resectable",
        "borderline",
        "unresectable",
        ["unresectable", "resectable"],
        ["unresectable"],
    ],
    "resectability_assessed_by": ["mdt", "hpb-surgeon", "other"],
    "liver_resection": ["none", "planned", "done"],
    "resection_margin": ["R0", "R1", "R2"],
    "ablation": [True, False],
    "months_since_liver_resection": [1, 3, 3.5, 8],
    "recurrence_since_resection": [True, False],
    "extrahepatic_disease": ["present", "absent", "indeterminate"],
    "extrahepatic_sites": [[], ["lung"], ["portal-nodes", "bone"]],
    "prior_extrahepatic_disease_treated": [True, False],
    "staging_imaging": [
        [],
        ["ct-chest"],
        ["ct-chest", "ct-abdomen-pelvis"],
        ["pet-ct"],
        ["ct-chest", "mri-abdomen"],
    ],
    "enrolled_in_haip_trial": [True, False],
    "trial_id": ["NCT00000000"],
    "planned_haip": [True, False],
    "planned_concurrent_systemic": [True, False],
    **{
        f"centre_{s}": ["yes", "no", "affiliated"]
        for s in (
            "hpb_surgery",
            "medical_oncology",
            "interventional_radiology",
            "nursing",
            "nuclear_medicine",
        )
    },
}
REGIMEN: dict[str, list[Any]] = {
    "regimen": ["FOLFOX", "CAPOX", "FOLFIRI"],
    "setting": ["metastatic", "adjuvant", "neoadjuvant"],
    "response": ["CR", "PR", "SD", "PD"],
    "progressed": [True, False],
    "months_since_end": [3, 20],
}


SCORE_KEYS: dict[str, list[Any]] = {
    "primary_node_positive": [True, False],
    "disease_free_interval_months": [0, 11.5, 12, 12.5, 30],
    "largest_liver_met_cm": [2, 5, 5.5],
    "cea": [
        {"value": 4, "unit": "ng/mL"},
        {"value": 200, "unit": "ug/L"},
        {"value": 200.5, "unit": "ng/mL"},
        {"value": 900, "unit": "ug/L"},
    ],
    "liver_mets_count": [0, 1, 2],
}


def random_case(rng: random.Random, index: int) -> dict[str, Any]:
    keep = rng.uniform(0.3, 0.95)
    case: dict[str, Any] = {"id": f"random-{index}"}
    for key, values in KEYS.items():
        if rng.random() < keep:
            case[key] = rng.choice(values)
    if rng.random() < 0.6:  # mostly in scope, where the statements differ
        case.update(primary_site="colon", histology="adenocarcinoma", liver_metastases=True)
    if rng.random() < 0.3:  # and often in the unresectable population, where S3a/S3b differ
        case.update(
            resectability="unresectable", resectability_assessed_by=rng.choice(["mdt", "hpb-surgeon"])
        )
    if rng.random() < keep:
        case["systemic_lines"] = [
            {k: rng.choice(v) for k, v in REGIMEN.items() if rng.random() < 0.8}
            for _ in range(rng.randint(0, 3))
        ]
    # Drawn last, so that the keys above stay what they were before these were added: the inputs of the
    # clinical risk score and of the flags, with values at and around their thresholds.
    for key, values in SCORE_KEYS.items():
        if rng.random() < keep:
            case[key] = rng.choice(values)
    for line in case.get("systemic_lines", []):
        if rng.random() < 0.5:
            line["months_since_end"] = rng.choice([0, 11.5, 12, 12.5])
    return case


def _view(decision: dict[str, Any]) -> dict[str, Any]:
    return {
        "verdict": decision["verdict"],
        "conditions": decision["conditions"],
        "statements": {
            name: {k: v for k, v in s.items() if k in ("status", "met")}
            for name, s in decision["statements"].items()
        },
    }


CASES = [random_case(random.Random(seed), seed) for seed in range(400)]


@pytest.fixture(scope="module")
def decided() -> dict[str, dict[str, Any]]:
    return {r["patient"]: r for r in decide_sheets(CASES)}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_agrees_with_the_independent_implementation(case: dict[str, Any], decided: dict[str, Any]) -> None:
    record = decided[case["id"]]
    assert "errors" not in record, record.get("errors")
    assert _view(record) == _view(policy_oracle.decide(case))


def test_the_random_cases_reach_every_verdict(decided: dict[str, Any]) -> None:
    verdicts = {r["verdict"] for r in decided.values()}
    assert verdicts == {
        "consider",
        "acceptable",
        "option",
        "not-recommended",
        "not-applicable",
        "undetermined",
    }
