"""Deciding the profile stages once per profile (engine.decide_profiles) changes nothing: every record
and the whole decision graph are the same as when every stage runs over every patient, for the case
corpus, the bundled examples and the randomised differential cases, whether a profile is decided in the
batch or comes from the process's cache."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import case_files
from test_differential import CASES as RANDOM_SHEETS

from haip_kg import engine, evaluate, inputs, resources
from haip_kg.inputs import Case


def _cases() -> list[Case]:
    paths = [str(p) for p in case_files()] + [str(resources.examples_dir() / "cases.json")]
    corpus = [inputs.to_case(item) for path in paths for item in inputs.read_items(path)]
    return corpus + list(inputs._from_sheets("random", RANDOM_SHEETS))


def _decide(cases: list[Case], by_profile: bool, with_rdf: bool = True) -> evaluate.Batch:
    """Decided in one batch; with_rdf: with the decision graph (the profiles' conclusions are then
    copied into the store; otherwise the records are read from the profiles)."""

    def decide(data: bytes, store: Any) -> engine.Backend:
        return engine.decide(data, store, by_profile, materialize=with_rdf)

    return evaluate.decide_cases(cases, decide, with_rdf)


@pytest.fixture(scope="module")
def per_patient() -> tuple[list[Case], evaluate.Batch]:
    cases = _cases()
    return cases, _decide(cases, by_profile=False)


def _records(batch: evaluate.Batch) -> list[str]:
    """The records as JSON text: the same keys in the same order (the output is written in dict order)."""
    return [json.dumps(outcome.record) for outcome in batch.outcomes]


def _triples(batch: evaluate.Batch) -> list[bytes]:
    """The decision graph's triples (N-Triples lines; it has no blank nodes), sorted: a store's dump
    order follows the order triples were added in."""
    assert b"_:" not in batch.decisions
    return sorted(batch.decisions.splitlines())


def test_profiles_give_the_same_records_and_graph(per_patient: Any) -> None:
    cases, expected = per_patient
    engine._PROFILE_DECISIONS.clear()
    first = _decide(cases, by_profile=True, with_rdf=False)
    decided = len(engine._PROFILE_DECISIONS)
    again = _decide(cases, by_profile=True)  # decided again, now with their conclusions as triples
    kept = dict(engine._PROFILE_DECISIONS)
    cached = _decide(cases, by_profile=True, with_rdf=False)  # every profile from the cache
    assert 50 < decided < len(cases)  # the profile path ran, and profiles were shared
    assert len(engine._PROFILE_DECISIONS) == decided
    assert all(engine._PROFILE_DECISIONS[p] is kept[p] for p in kept)
    assert sum("errors" not in o.record for o in expected.outcomes) > 400
    for batch in (first, again, cached):
        assert _records(batch) == _records(expected)
    assert _triples(again) == _triples(expected)


def test_each_profile_is_decided_alone(per_patient: Any) -> None:
    """One patient at a time (a profile decided with no other in its store) gives the same records."""
    cases, expected = per_patient
    engine._PROFILE_DECISIONS.clear()
    records = [r for case in cases[:60] for r in _records(_decide([case], True, with_rdf=False))]
    assert records == _records(expected)[:60]


def test_a_full_cache_is_emptied_without_losing_the_batch(per_patient: Any, monkeypatch: Any) -> None:
    """When the cache would outgrow its bound it is emptied, and the batch at hand keeps the decisions
    it had found in it."""
    cases, expected = per_patient
    engine._PROFILE_DECISIONS.clear()
    _decide(cases[:40], by_profile=True, with_rdf=False)
    monkeypatch.setattr(engine, "MAX_PROFILES", len(engine._PROFILE_DECISIONS) + 1)
    assert _records(_decide(cases, by_profile=True, with_rdf=False)) == _records(expected)
    assert len(engine._PROFILE_DECISIONS) < len(cases)
