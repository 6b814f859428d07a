"""The decisions as RDF (`--format turtle`): invariants over the decision graph of the corpus, the bundled
examples and the randomised cases, each a SPARQL query that must find nothing; and the graph read back
into the output fields agrees with the independent implementation of the policy (tests/policy_oracle.py)
and with the JSON records of the same run."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import policy_oracle
import pyoxigraph as ox
import pytest
from conftest import case_files
from test_outputs import SHEETS, view

from haip_kg import engine, evaluate, inputs

INVARIANTS = sorted((Path(__file__).parent / "decision-graph").glob("*.rq"))
"""Each a query for what must never be in the decision graph: each row it finds is a violation."""


@pytest.fixture(scope="module")
def decided() -> tuple[ox.Store, list[dict[str, Any]]]:
    native = [c for path in case_files() if path.suffix == ".ttl" for c in inputs.read(str(path))]
    batches = list(evaluate.evaluate([*native, *inputs._from_sheets("test", SHEETS)], with_rdf=True))
    store = ox.Store()
    store.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
    for batch in batches:
        store.load(batch.decisions, format=ox.RdfFormat.N_TRIPLES)
    return store, [o.record for batch in batches for o in batch.outcomes]


def _rows(store: ox.Store, query: str) -> list[dict[str, Any]]:
    return engine.Embedded(store).select(query)


@pytest.mark.parametrize("path", INVARIANTS, ids=lambda p: p.stem)
def test_invariant(path: Path, decided: Any) -> None:
    store, records = decided
    assert len(records) > 400 and all("errors" not in r for r in records)
    violations = engine.Embedded(store).select(path.read_text(encoding="utf-8"))
    assert violations == [], f"{path.name}: {violations[:3]}"


GRAPH_VIEW = (Path(__file__).parent / "decision-graph" / "read" / "statement-fields.rq").read_text(
    encoding="utf-8"
)
PATIENT_VIEW = (Path(__file__).parent / "decision-graph" / "read" / "patient-fields.rq").read_text(
    encoding="utf-8"
)


def _graph_views(store: ox.Store) -> dict[str, dict[str, Any]]:
    """Each patient's output fields (as test_outputs.view gives them), read from the decision graph."""
    views: dict[str, dict[str, Any]] = {}
    conditions: dict[str, set[tuple[int, str]]] = defaultdict(set)
    for row in _rows(store, PATIENT_VIEW):
        v = views.setdefault(
            row["id"], {"verdict": row["verdict"], "statements": {}, "flags": set(), "score": set()}
        )
        if row["condition"] is not None:
            conditions[row["id"]].add((int(row["order"]), row["condition"]))
        if row["flag"] is not None:
            v["flags"].add(row["flag"])
        v["score"].add(row["score"])
    for row in _rows(store, GRAPH_VIEW):
        entry = views[row["id"]]["statements"].setdefault(row["statement"], {"status": row["status"]})
        if row["met"] is not None:
            entry["met"] = {"true": True, "false": False, "unknown": None}[row["met"]]
        for field, value in (("exception", row["exception"]), ("overridden_by", row["over"])):
            if value is not None:
                entry[field] = value
        if row["key"] is not None and row["statement"] != "scope":  # the JSON has no scope entry
            entry.setdefault("missing", set()).add(row["key"])
    out = {}
    for patient, v in views.items():
        (score,) = v["score"]
        out[patient] = {
            "verdict": v["verdict"],
            "conditions": [c for _order, c in sorted(conditions[patient])],
            "statements": {
                name: {k: sorted(x) if k == "missing" else x for k, x in entry.items()}
                for name, entry in sorted(v["statements"].items())
            },
            "flags": sorted(v["flags"]),
            "clinical_risk_score": None if score is None else int(score),
        }
    return out


def _sorted(v: dict[str, Any], scope: str) -> dict[str, Any]:
    """A JSON view with the statements in name order and the scope's decision (the graph has it too)."""
    return {**v, "statements": dict(sorted({**v["statements"], "scope": {"status": scope}}.items()))}


def test_the_graph_says_what_the_policy_and_the_json_say(decided: Any) -> None:
    store, records = decided
    graph = _graph_views(store)
    assert set(graph) == {r["patient"] for r in records}
    for record in records:
        scope = graph[record["patient"]]["statements"]["scope"]["status"]
        assert graph[record["patient"]] == _sorted(view(record), scope), record["patient"]
    for sheet in SHEETS:
        scope = policy_oracle.status_of(policy_oracle.fact_in_scope(sheet))
        assert graph[sheet["id"]] == _sorted(view(policy_oracle.decide(sheet)), scope), sheet["id"]
