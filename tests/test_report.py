"""The report reader: reasons and interpretations travel from the store as ENCODE_FOR_URI-encoded items
joined by GROUP_CONCAT; whatever text a case sheet holds must come back unchanged, in display order."""

from __future__ import annotations

import json
from typing import Any

from conftest import decide_sheets

from haip_kg import engine, evaluate, inputs

ODD = 'FOLFOX: 50% dose + é 漢 "q" a\tb %20 x:y'
SHEET = {
    "id": "odd text",
    "primary_site": "colon",
    "histology": "adenocarcinoma",
    "liver_metastases": True,
    "resectability": "unresectable",
    "resectability_assessed_by": "mdt",
    "systemic_lines": [{"regimen": ODD, "setting": "metastatic", "response": "PD", "progressed": True}],
}


def test_reason_text_comes_back_unchanged_whatever_it_holds() -> None:
    (record,) = decide_sheets([SHEET])
    reasons = record["statements"]["S3a"]["reasons"]
    assert f"progressed on first line {ODD}" in reasons


def test_reasons_keep_the_facts_display_order() -> None:
    (record,) = decide_sheets([SHEET])
    reasons = record["statements"]["S3a"]["reasons"]
    assert reasons[:3] == ["primary site colon", "histology adenocarcinoma", "liver metastases diagnosed"]
    assert reasons[-1] == f"progressed on first line {ODD}"
    assert len(reasons) == len(set(reasons))


def test_interpretations_are_sorted_slugs() -> None:
    (record,) = decide_sheets([SHEET])
    for statement in record["statements"].values():
        values = statement.get("interpretations", [])
        assert values == sorted(set(values))
        assert all(value and " " not in value and "%" not in value for value in values)


def test_the_profile_reader_and_the_explanation_queries_agree_on_odd_text() -> None:
    """Embedded records are read from the patient's profile (report._records_by_profile); the explanation-*
    queries read them when every rule runs over every patient: both ways give the same record."""
    cases = list(inputs._from_sheets("test", [SHEET]))

    def per_patient(data: bytes, store: Any) -> engine.Backend:
        return engine.decide(data, store, by_profile=False)

    (outcome,) = evaluate.decide_cases(cases, per_patient).outcomes
    assert json.dumps(outcome.record) == json.dumps(decide_sheets([SHEET])[0])  # key order too
