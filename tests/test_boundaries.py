"""Each numeric threshold of decision policy v1, tried just below, at and just above: the answer the policy
gives (written out here from its words) and the independent implementation's (tests/policy_oracle.py)
must both be what haip-kg decides.

Thresholds: liver metastases shown by a count >= 1; the adjuvant window of S5 (<= 3 months since the
liver resection); the relapse-after-adjuvant flag (months_since_end < 12); the beyond-second-line flag
(two or more metastatic regimens that progressed); the Fong score's five criteria (node-positive primary,
disease-free interval < 12 months, more than one liver metastasis, largest > 5 cm, CEA > 200 ng/mL).
"""

from __future__ import annotations

from typing import Any

import policy_oracle
import pytest
from conftest import decide_sheets
from test_outputs import view

IN_SCOPE = {"primary_site": "colon", "histology": "adenocarcinoma", "liver_metastases": True}
ZERO_SCORE = {  # every Fong criterion known, none scoring
    "primary_node_positive": False,
    "disease_free_interval_months": 24,
    "liver_mets_count": 1,
    "largest_liver_met_cm": 2,
    "cea": {"value": 5, "unit": "ng/mL"},
}
RESECTED = {
    **IN_SCOPE,
    "resectability": "resectable",
    "resectability_assessed_by": "mdt",
    "liver_resection": "done",
    "resection_margin": "R0",
    "recurrence_since_resection": False,
}


def _regimens(progressed: int) -> list[dict[str, Any]]:
    return [{"regimen": f"line {i}", "setting": "metastatic", "progressed": i < progressed} for i in range(3)]


# (id, case sheet without id, what the policy says about it: a few fields of the output)
BOUNDARIES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # liver metastases: liver_mets_count >= 1 shows them; 0 alone settles nothing (open world)
    (
        "mets-count-0",
        {"primary_site": "colon", "histology": "adenocarcinoma", "liver_mets_count": 0},
        {"verdict": "undetermined", "S5": "undetermined"},
    ),
    (
        "mets-count-1",
        {"primary_site": "colon", "histology": "adenocarcinoma", "liver_mets_count": 1},
        {"verdict": "undetermined", "S4": "undetermined"},
    ),
    (
        "mets-count-0-resectable",
        {
            "primary_site": "colon",
            "histology": "adenocarcinoma",
            "liver_mets_count": 0,
            "resectability": "resectable",
            "resectability_assessed_by": "mdt",
            "extrahepatic_disease": "absent",
            "staging_imaging": ["pet-ct"],
            "liver_resection": "none",
        },
        {"verdict": "undetermined", "S3a": "not-applicable", "S4": "not-applicable"},
    ),
    (
        "mets-count-1-resectable",
        {
            "primary_site": "colon",
            "histology": "adenocarcinoma",
            "liver_mets_count": 1,
            "resectability": "resectable",
            "resectability_assessed_by": "mdt",
            "extrahepatic_disease": "absent",
            "staging_imaging": ["pet-ct"],
            "liver_resection": "none",
        },
        {"verdict": "not-applicable", "S3a": "not-applicable", "S4": "not-applicable"},
    ),
    # S5's adjuvant window: at most 3 months since the liver resection
    ("resection-2.99-months", {**RESECTED, "months_since_liver_resection": 2.99}, {"S5": "applies"}),
    ("resection-3-months", {**RESECTED, "months_since_liver_resection": 3}, {"S5": "applies"}),
    ("resection-3.01-months", {**RESECTED, "months_since_liver_resection": 3.01}, {"S5": "not-applicable"}),
    # relapse after adjuvant or neoadjuvant therapy that ended less than 12 months ago
    *[
        (
            f"{setting}-ended-{months}-months",
            {
                **IN_SCOPE,
                "systemic_lines": [{"regimen": "CAPOX", "setting": setting, "months_since_end": months}],
            },
            {"flags": ["relapse-after-adjuvant"] if months < 12 else []},
        )
        for setting in ("adjuvant", "neoadjuvant")
        for months in (11.99, 12, 12.01)
    ],
    (
        "metastatic-ended-6-months",
        {
            **IN_SCOPE,
            "systemic_lines": [{"regimen": "FOLFOX", "setting": "metastatic", "months_since_end": 6}],
        },
        {"flags": []},
    ),
    # beyond the second line: two or more metastatic regimens that progressed
    *[
        (
            f"{n}-progressed-regimens",
            {**IN_SCOPE, "systemic_lines": _regimens(n)},
            {
                "flags": ["beyond-second-line"] if n >= 2 else [],
                "S3a": "not-applicable" if n == 0 else "undetermined",
            },
        )
        for n in (0, 1, 2, 3)
    ],
    # the Fong score: each criterion alone, just below, at and just above its threshold
    ("score-all-zero", {**IN_SCOPE, **ZERO_SCORE}, {"clinical_risk_score": 0}),
    (
        "score-node-positive",
        {**IN_SCOPE, **ZERO_SCORE, "primary_node_positive": True},
        {"clinical_risk_score": 1},
    ),
    *[
        (
            f"score-interval-{months}",
            {**IN_SCOPE, **ZERO_SCORE, "disease_free_interval_months": months},
            {"clinical_risk_score": 1 if months < 12 else 0},
        )
        for months in (11.99, 12, 12.01)
    ],
    *[
        (
            f"score-count-{count}",
            {**IN_SCOPE, **ZERO_SCORE, "liver_mets_count": count},
            {"clinical_risk_score": 1 if count > 1 else 0},
        )
        for count in (0, 1, 2)
    ],
    *[
        (
            f"score-largest-{cm}",
            {**IN_SCOPE, **ZERO_SCORE, "largest_liver_met_cm": cm},
            {"clinical_risk_score": 1 if cm > 5 else 0},
        )
        for cm in (4.99, 5, 5.01)
    ],
    *[
        (
            f"score-cea-{value}-{unit}",
            {**IN_SCOPE, **ZERO_SCORE, "cea": {"value": value, "unit": unit}},
            {"clinical_risk_score": 1 if value > 200 else 0},
        )
        for value in (199.99, 200, 200.01)
        for unit in ("ng/mL", "ug/L")
    ],
    (
        "score-one-unknown",
        {**IN_SCOPE, **{k: v for k, v in ZERO_SCORE.items() if k != "cea"}},
        {"clinical_risk_score": None},
    ),
]
SHEETS = [{"id": name, **sheet} for name, sheet, _policy in BOUNDARIES]


@pytest.fixture(scope="module")
def decided() -> dict[str, dict[str, Any]]:
    return {r["patient"]: r for r in decide_sheets(SHEETS)}


@pytest.mark.parametrize(("name", "sheet", "policy"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_threshold(name: str, sheet: dict[str, Any], policy: dict[str, Any], decided: dict[str, Any]) -> None:
    record = decided[name]
    assert "errors" not in record, record.get("errors")
    for field, expected in policy.items():
        if field in ("verdict", "clinical_risk_score"):
            assert record[field] == expected, field
        elif field == "flags":
            assert sorted(record["flags"]) == expected
        else:
            assert record["statements"][field]["status"] == expected, field
    assert view(record) == view(policy_oracle.decide({"id": name, **sheet}))


# The type boundary of the numbers the thresholds read: JSON true/false is not a number (Python's bool is
# an int, so a reader can take it for 1 or 0 unless it checks).
NOT_NUMBERS = [
    ("liver_mets_count", {"liver_mets_count": True}),
    ("months_since_liver_resection", {"months_since_liver_resection": False}),
    ("largest_liver_met_cm", {"largest_liver_met_cm": True}),
    ("disease_free_interval_months", {"disease_free_interval_months": False}),
    ("cea.value", {"cea": {"value": True, "unit": "ng/mL"}}),
    (
        "systemic_lines[0].months_since_end",
        {"systemic_lines": [{"setting": "adjuvant", "months_since_end": True}]},
    ),
]


def test_a_boolean_is_not_a_number() -> None:
    sheets = [{"id": f"boolean-{key}", **IN_SCOPE, **extra} for key, extra in NOT_NUMBERS]
    for (key, _extra), record in zip(NOT_NUMBERS, decide_sheets(sheets), strict=True):
        assert "verdict" not in record, f"{key}: a boolean was read as a number"
        assert key in {error["key"] for error in record["errors"]}, record["errors"]
