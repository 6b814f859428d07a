"""The reasoning step is real and right: the statuses that OWL RL reasoning (reasonable) gives agree
with HermiT on the same fact classes, and with a plain Kleene evaluation of each statement's clauses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import case_files
from rdflib import OWL, RDF, Graph, URIRef

from haip_kg import check, engine, inputs
from haip_kg.namespaces import HAIP

CLASSES = """
PREFIX haip: <https://w3id.org/haip/>
SELECT ?patient ?class WHERE {
  ?fact haip:positiveClass|haip:negativeClass ?class . ?patient a haip:Patient ; a ?class .
}"""
STATUSES = """
PREFIX haip: <https://w3id.org/haip/>
SELECT ?patient ?statement ?status WHERE {
  ?d haip:aboutPatient ?patient ; haip:aboutStatement ?s ; haip:status ?st .
  ?s haip:slug ?statement . ?st haip:slug ?status .
}"""
LITERALS = """
PREFIX haip: <https://w3id.org/haip/>
SELECT ?statement ?clause ?fact ?negated WHERE {
  ?s haip:slug ?statement ; haip:hasClause ?clause . ?clause haip:hasLiteral ?l .
  ?l haip:literalFact/haip:slug ?fact ; haip:negated ?negated .
}"""
VALUES = """
PREFIX haip: <https://w3id.org/haip/>
SELECT ?patient ?fact ?value WHERE {
  ?a haip:aboutPatient ?patient ; haip:assessedFact/haip:slug ?fact ; haip:truthValue ?v .
  BIND(STRAFTER(STR(?v), STR(haip:)) AS ?value)
}"""


@pytest.fixture(scope="module")
def store() -> Any:
    cases = [c for path in case_files() for c in inputs.read(str(path))]
    return engine.decide(engine.ntriples_of(t for case in cases for t in case.triples)).store


def _rows(store: Any, query: str) -> list[dict[str, str]]:
    result = store.query(query)
    return [{v.value: row[v.value].value for v in result.variables} for row in result]


def test_statuses_equal_a_kleene_evaluation_of_the_clauses(store: Any) -> None:
    values = {(r["patient"], r["fact"]): r["value"] for r in _rows(store, VALUES)}
    clauses: dict[str, dict[str, list[tuple[str, bool]]]] = {}
    for r in _rows(store, LITERALS):
        clauses.setdefault(r["statement"], {}).setdefault(r["clause"], []).append(
            (r["fact"], r["negated"] == "true")
        )
    negate = {"true": "false", "false": "true", "unknown": "unknown"}
    for row in _rows(store, STATUSES):
        clause_values = []
        for literals in clauses[row["statement"]].values():
            lits = [
                negate[values[(row["patient"], f)]] if neg else values[(row["patient"], f)]
                for f, neg in literals
            ]
            clause_values.append(
                "true" if "true" in lits else "false" if all(v == "false" for v in lits) else "unknown"
            )
        kleene = (
            "false"
            if "false" in clause_values
            else "true"
            if all(v == "true" for v in clause_values)
            else "unknown"
        )
        expected = {"true": "applies", "false": "not-applicable", "unknown": "undetermined"}[kleene]
        assert row["status"] == expected, (row, clause_values)


def test_owl_rl_classification_agrees_with_hermit(store: Any) -> None:
    import owlready2

    asserted = Graph()
    for r in _rows(store, CLASSES):
        asserted.add((URIRef(r["patient"]), RDF.type, URIRef(r["class"])))
    graph = check.knowledge_base() + asserted
    graph.remove((None, OWL.imports, None))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kb.nt"
        graph.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        ontology = world.get_ontology(path.as_uri()).load(format="ntriples")
        with ontology:
            owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        populations = {}
        kb = check.knowledge_base()
        for statement, population in kb.subject_objects(HAIP.addressesPopulation):
            outside = kb.value(statement, HAIP.outsidePopulation)
            populations[str(kb.value(statement, HAIP.slug))] = (
                {i.iri for i in world[str(population)].instances()},
                {i.iri for i in world[str(outside)].instances()},
            )
    checked = 0
    for row in _rows(store, STATUSES):
        inside, outside = populations[row["statement"]]
        hermit = (
            "applies"
            if row["patient"] in inside
            else "not-applicable"
            if row["patient"] in outside
            else "undetermined"
        )
        assert hermit == row["status"], row
        checked += 1
    assert checked >= 7 * 40


def _entailed(tbox: list[Any], signatures: list[frozenset[str]]) -> list[set[str]]:
    import reasonable

    reasoner = reasonable.PyReasoner()
    reasoner.from_graph(tbox)
    individuals = [URIRef(f"urn:test:signature:{i}") for i in range(len(signatures))]
    reasoner.from_graph(
        [(ind, RDF.type, URIRef(c)) for ind, sig in zip(individuals, signatures, strict=True) for c in sig]
    )
    types: dict[Any, set[str]] = {ind: set() for ind in individuals}
    for s, p, o in reasoner.reason():
        if p == RDF.type and s in types:
            types[s].add(str(o))
    return [types[ind] for ind in individuals]


def test_reasoning_without_annotations_entails_the_same_classes(store: Any) -> None:
    """The reasoner is given the TBox without its annotation assertions (engine.tbox_axioms); for the
    bundled cases' fact classes and 300 random combinations of every fact's classes, it entails the
    same classes as with the whole TBox."""
    import random

    kb = check.knowledge_base()
    fact_classes = [
        [str(c) for c in (kb.value(f, HAIP.positiveClass), kb.value(f, HAIP.negativeClass)) if c is not None]
        for f in set(kb.subjects(HAIP.positiveClass, None))
    ]
    assert len(fact_classes) >= 8
    signatures: dict[str, set[str]] = {}
    for r in _rows(store, CLASSES):
        signatures.setdefault(r["patient"], set()).add(r["class"])
    combos = [frozenset(s) for s in signatures.values()]
    rng = random.Random(5)
    for _ in range(300):
        combos.append(frozenset(c for classes in fact_classes if (c := rng.choice([*classes, None]))))
    whole = _entailed(list(engine.tbox_graph()), combos)
    assert whole == _entailed(list(engine.tbox_axioms()), combos)
    assert len(engine.tbox_axioms()) < len(engine.tbox_graph()) * 0.6
    assert any(len(w) > len(sig) + 1 for w, sig in zip(whole, combos, strict=True))  # something entailed
