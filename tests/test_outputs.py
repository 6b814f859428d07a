"""Every output field, not only the statuses: `missing`, S4's `exception`, `overridden_by`, `met`, the flags
and the clinical risk score of each case sheet in the corpus, the bundled examples and the randomised
differential cases, compared with the independent implementation of the policy (tests/policy_oracle.py).

The oracle's explanation fields follow the policy's words and the explanation contract
(docs/explanations.md), never the code; `reasons`, `interpretations` and `conflicts` are checked by the
hand-written expectations (tests/test_cases.py)."""

from __future__ import annotations

from typing import Any

import policy_oracle
import pytest
from conftest import case_files, decide_sheets, load
from test_differential import CASES as RANDOM_SHEETS

from haip_kg import resources

FIELDS = ("status", "met", "missing", "exception", "overridden_by")


def _corpus_sheets() -> list[dict[str, Any]]:
    sheets = [load(path) for path in case_files() if path.suffix == ".json"]
    return sheets + load(resources.examples_dir() / "cases.json")


SHEETS = _corpus_sheets() + RANDOM_SHEETS


def view(decision: dict[str, Any]) -> dict[str, Any]:
    """The fields the oracle decides, in one comparable form (a missing `missing` list is empty)."""
    return {
        "verdict": decision["verdict"],
        "conditions": decision["conditions"],
        "statements": {
            name: {k: v for k, v in s.items() if k in FIELDS and v != []}
            for name, s in decision["statements"].items()
        },
        "flags": sorted(decision["flags"]),
        "clinical_risk_score": decision["clinical_risk_score"],
    }


@pytest.fixture(scope="module")
def decided() -> dict[str, dict[str, Any]]:
    return {r["patient"]: r for r in decide_sheets(SHEETS)}


@pytest.mark.parametrize("sheet", SHEETS, ids=lambda c: c["id"])
def test_every_field_agrees_with_the_independent_implementation(
    sheet: dict[str, Any], decided: dict[str, Any]
) -> None:
    record = decided[sheet["id"]]
    assert "errors" not in record, record.get("errors")
    assert view(record) == view(policy_oracle.decide(sheet))


def test_the_cases_reach_every_field_value() -> None:
    """The comparison above stays meaningful: the cases reach every flag, every score from 0 to 5 and
    null, the exception, an override, and `missing` lists (fails if the generator drifts)."""
    oracle = [policy_oracle.decide(sheet) for sheet in SHEETS]
    flags = {flag for d in oracle for flag in d["flags"]}
    assert flags == {
        "ablation-only",
        "affiliated-service",
        "beyond-second-line",
        "prior-extrahepatic-disease",
        "relapse-after-adjuvant",
    }
    assert {d["clinical_risk_score"] for d in oracle} >= {None, 0, 1, 2, 3, 4}
    assert sum(d["statements"]["S4"].get("exception") == "clinical-trial" for d in oracle) >= 5
    assert sum("overridden_by" in s for d in oracle for s in d["statements"].values()) >= 5
    missing = {key for d in oracle for s in d["statements"].values() for key in s.get("missing", [])}
    assert len(missing) >= 15
    assert {"systemic_lines[0].setting", "systemic_lines[0].progressed", "staging_imaging"} <= missing
    # S4 not-applicable for a patient in a trial without extrahepatic disease: the exception must not show
    assert any(
        d["statements"]["S4"]["status"] == "not-applicable" and "exception" not in d["statements"]["S4"]
        for d, sheet in zip(oracle, SHEETS, strict=True)
        if sheet.get("enrolled_in_haip_trial") is True
    )
