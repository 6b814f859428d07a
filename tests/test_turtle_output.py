"""The decisions as RDF (`--format turtle`): invariants over the decision graph of the corpus, the bundled
examples and the randomised cases, each a SPARQL query that must find nothing; and the graph read back
into the output fields agrees with the independent implementation of the policy (tests/policy_oracle.py)
and with the JSON records of the same run."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import policy_oracle
import pyoxigraph as ox
import pytest
from conftest import case_files
from test_outputs import SHEETS, view

from haip_kg import engine, evaluate, inputs

PREFIXES = """
PREFIX haip: <https://w3id.org/haip/>
PREFIX haipx: <https://w3id.org/haip/fact/>
PREFIX dcterms: <http://purl.org/dc/terms/>
"""
# name -> a query for what must never be in the decision graph (each row is a violation)
INVARIANTS = {
    "met on a not-applicable decision": """
        SELECT ?d WHERE { ?d a haip:StatementDecision ; haip:status haip:NotApplicable ; haip:met ?met }""",
    "no met on a requirement that is not not-applicable": """
        SELECT ?d WHERE {
          ?d a haip:StatementDecision ; haip:aboutStatement ?s ; haip:status ?status .
          ?s haip:metFact ?fact . FILTER(?status != haip:NotApplicable)
          FILTER NOT EXISTS { ?d haip:met ?met } }""",
    "met on a statement that is not a requirement": """
        SELECT ?d WHERE { ?d haip:met ?met ; haip:aboutStatement ?s . FILTER NOT EXISTS { ?s haip:metFact ?f } }""",
    "met that is not a truth value": """
        SELECT ?d WHERE { ?d haip:met ?met . FILTER(?met NOT IN (haip:true, haip:false, haip:unknown)) }""",
    "statement decision without exactly one status, statement and patient": """
        SELECT ?d WHERE {
          { SELECT ?d (COUNT(DISTINCT ?st) AS ?n) (COUNT(DISTINCT ?s) AS ?m) (COUNT(DISTINCT ?p) AS ?k)
            WHERE { ?d a haip:StatementDecision .
                    OPTIONAL { ?d haip:status ?st } OPTIONAL { ?d haip:aboutStatement ?s }
                    OPTIONAL { ?d haip:aboutPatient ?p } }
            GROUP BY ?d }
          FILTER(?n != 1 || ?m != 1 || ?k != 1) }""",
    "patient decision without exactly one verdict": """
        SELECT ?d WHERE {
          { SELECT ?d (COUNT(DISTINCT ?v) AS ?n) WHERE { ?d a haip:PatientDecision . OPTIONAL { ?d haip:verdict ?v } }
            GROUP BY ?d }
          FILTER(?n != 1) }""",
    "patient decision lacking a statement's decision": """
        SELECT ?pd ?s WHERE {
          ?pd a haip:PatientDecision ; haip:aboutPatient ?p . ?s a haip:ConsensusStatement .
          FILTER NOT EXISTS { ?pd haip:hasStatementDecision ?d . ?d haip:aboutStatement ?s ; haip:aboutPatient ?p } }""",
    "used fact that is not an assessment of the same patient": """
        SELECT ?d ?a WHERE {
          ?d haip:usedFact ?a ; haip:aboutPatient ?p .
          FILTER NOT EXISTS { ?a a haip:FactAssessment ; haip:aboutPatient ?p ; haip:truthValue ?v } }""",
    "fact assessment without exactly one truth value": """
        SELECT ?a WHERE {
          { SELECT ?a (COUNT(DISTINCT ?v) AS ?n) WHERE { ?a a haip:FactAssessment . OPTIONAL { ?a haip:truthValue ?v } }
            GROUP BY ?a }
          FILTER(?n != 1) }""",
    "settled decision without a used fact": """
        SELECT ?d WHERE {
          ?d a haip:StatementDecision ; haip:status ?st . FILTER(?st != haip:Undetermined)
          FILTER NOT EXISTS { ?d haip:usedFact ?a } }""",
    "applying decision that used a fact not true (nor negated false)": """
        SELECT ?d ?a WHERE {
          ?d haip:status haip:Applies ; haip:usedFact ?a . ?a haip:truthValue haip:unknown }""",
    "a known fact naming a missing key": """
        SELECT ?a WHERE { ?a haip:missingKey ?k ; haip:truthValue ?v . FILTER(?v != haip:unknown) }""",
    "exception without extrahepatic disease and a HAIP trial": """
        SELECT ?d WHERE {
          ?d haip:exceptionApplied ?e ; haip:aboutPatient ?p .
          FILTER NOT EXISTS {
            ?d haip:aboutStatement haip:S4 ; haip:status haip:NotApplicable .
            ?x haip:aboutPatient ?p ; haip:assessedFact haipx:extrahepatic-disease ; haip:truthValue haip:true .
            ?t haip:aboutPatient ?p ; haip:assessedFact haipx:in-haip-trial ; haip:truthValue haip:true . } }""",
    "extrahepatic disease in a HAIP trial without the exception": """
        SELECT ?d WHERE {
          ?d haip:aboutStatement haip:S4 ; haip:aboutPatient ?p .
          ?x haip:aboutPatient ?p ; haip:assessedFact haipx:extrahepatic-disease ; haip:truthValue haip:true .
          ?t haip:aboutPatient ?p ; haip:assessedFact haipx:in-haip-trial ; haip:truthValue haip:true .
          FILTER NOT EXISTS { ?d haip:exceptionApplied ?e } }""",
    "override without an applying indication and S4": """
        SELECT ?d WHERE {
          ?d haip:overriddenBy ?by ; haip:aboutPatient ?p .
          FILTER NOT EXISTS {
            ?d haip:status haip:Applies ; haip:aboutStatement ?s . ?s a haip:Indication .
            ?s4 haip:aboutPatient ?p ; haip:aboutStatement haip:S4 ; haip:status haip:Applies . } }""",
    "conditions on a verdict that is not positive": """
        SELECT ?pd WHERE {
          ?pd haip:hasCondition ?c ; haip:verdict ?v . FILTER(?v NOT IN (haip:Consider, haip:Acceptable, haip:Option)) }""",
}


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
    return engine.Embedded(store).select(PREFIXES + query)


@pytest.mark.parametrize("name", INVARIANTS)
def test_invariant(name: str, decided: Any) -> None:
    store, records = decided
    assert len(records) > 400 and all("errors" not in r for r in records)
    violations = _rows(store, INVARIANTS[name])
    assert violations == [], f"{name}: {violations[:3]}"


GRAPH_VIEW = """
SELECT ?id ?statement ?status ?met ?exception ?over ?key WHERE {
  ?pd a haip:PatientDecision ; haip:aboutPatient ?p ; haip:hasStatementDecision ?d .
  ?p dcterms:identifier ?id .
  ?d haip:aboutStatement/haip:slug ?statement ; haip:status/haip:slug ?status .
  OPTIONAL { ?d haip:met ?metValue BIND(STRAFTER(STR(?metValue), STR(haip:)) AS ?met) }
  OPTIONAL { ?d haip:exceptionApplied/haip:slug ?exception }
  OPTIONAL { ?d haip:overriddenBy/haip:slug ?over }
  OPTIONAL { ?d haip:status haip:Undetermined ; haip:usedFact/haip:missingKey ?key }
}"""
PATIENT_VIEW = """
SELECT ?id ?verdict ?condition ?order ?flag ?score WHERE {
  ?pd a haip:PatientDecision ; haip:aboutPatient ?p ; haip:verdict/haip:slug ?verdict .
  ?p dcterms:identifier ?id .
  OPTIONAL { ?pd haip:hasCondition ?c . ?c haip:slug ?condition ; haip:conditionOrder ?order }
  OPTIONAL { ?p haip:hasFlag/haip:slug ?flag }
  OPTIONAL { ?p haip:clinicalRiskScore ?score }
}"""


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
