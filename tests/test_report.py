"""The report reader: reasons and interpretations travel from the store as ENCODE_FOR_URI-encoded items
joined by GROUP_CONCAT; whatever text a case sheet holds must come back unchanged, in display order."""

from __future__ import annotations

import json
from typing import Any

from conftest import decide_sheets

from haip_kg import check, engine, evaluate, inputs, report
from haip_kg.namespaces import HAIP

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


def test_the_statements_and_their_order_are_the_knowledge_base_s() -> None:
    """report.statements() is what the knowledge base says (haip:statementOrder), and what the records
    hold, key for key; the hand-written list is the consensus's own numbering."""
    graph = check.knowledge_base()
    ordered = sorted(
        (int(o), str(graph.value(s, HAIP.slug))) for s, o in graph.subject_objects(HAIP.statementOrder)
    )
    assert (
        list(report.statements())
        == [slug for _order, slug in ordered]
        == ["S1", "S2", "S3a", "S3b", "S4", "S5"]
    )
    (record,) = decide_sheets([SHEET])
    assert tuple(record["statements"]) == report.statements()


def test_the_consensus_entry_is_read_from_the_knowledge_base() -> None:
    (record,) = decide_sheets([SHEET])
    assert json.dumps(record["consensus"]) == json.dumps(
        {
            "doi": "10.3747/co.21.1577",
            "citation": "Karanicolas PJ et al. Curr Oncol 2014;21(1):e129-e136",
            "policy": "decision policy v1",
        }
    )
    record["consensus"]["doi"] = "changed"
    assert report.consensus()["doi"] == "10.3747/co.21.1577"  # each record has its own copy


def test_the_one_record_builder_agrees_with_the_explanation_queries() -> None:
    """report.build_record joins decisions and the assessments they used in Python; the explanation-*
    queries (tests/explanation_oracle.py) join them in SPARQL. Over the corpus and random varied cases,
    decided with every stage over every patient, both give every record alike."""
    import random

    from conftest import CASES, load
    from explanation_oracle import records as oracle_records
    from test_memo import varied_case

    sheets = [load(p) for p in sorted(CASES.glob("*.json")) if not p.name.endswith(".expected.json")]
    flat = [s for group in sheets for s in (group if isinstance(group, list) else [group])]
    rng = random.Random(11)
    flat += [varied_case(rng, i) for i in range(200)]
    cases = [c for c in inputs._from_sheets("test", flat) if not c.errors]
    data = b"".join(engine.ntriples_of(c.triples) for c in cases)
    backend = engine.decide(data, by_profile=False)
    built = report.records(backend)
    expected = oracle_records(backend)
    assert len(built) == len(expected) > 200
    for patient, record in expected.items():
        assert json.dumps(built[patient]) == json.dumps(record), patient
