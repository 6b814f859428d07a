"""The reasoning step is real and right: the statuses that OWL RL reasoning (reasonable) gives agree
with HermiT on the same fact classes, and with a plain Kleene evaluation of each statement's clauses; and,
independently of the rules, both reasoners classify the facts that the independent implementation of the
policy (tests/policy_oracle.py) finds into the populations whose statuses it gives, and HermiT finds the
populations the policy makes disjoint disjoint."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import policy_oracle
import pytest
from conftest import case_files
from rdflib import OWL, RDF, BNode, Graph, Namespace, URIRef
from rdflib.collection import Collection
from test_outputs import SHEETS as ORACLE_SHEETS

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


def _fact_classes(kb: Graph) -> dict[str, tuple[URIRef, URIRef]]:
    """Each fact's slug -> (positive class, negative class), as the knowledge base names them."""
    return {
        str(kb.value(fact, HAIP.slug)): (URIRef(positive), URIRef(kb.value(fact, HAIP.negativeClass)))
        for fact, positive in kb.subject_objects(HAIP.positiveClass)
    }


def _oracle_classes(sheet: dict[str, Any], classes: dict[str, tuple[URIRef, URIRef]]) -> set[URIRef]:
    """The fact classes of a case sheet's facts as the independent implementation of the policy decides
    them: the positive class for a true fact, the negative for a false one, neither for an unknown."""
    out = set()
    for slug, (fact, _missing) in policy_oracle.FACTS.items():
        value = fact(sheet)
        if value is not None:
            out.add(classes[slug][0 if value else 1])
    return out


def _oracle_status(sheet: dict[str, Any], statement: str) -> str:
    if statement == "scope":
        return policy_oracle.status_of(policy_oracle.fact_in_scope(sheet))
    return str(policy_oracle.decide(sheet)["statements"][statement]["status"])


@pytest.fixture(scope="module")
def hermit(store: Any) -> dict[str, Any]:
    """One HermiT run (owlready2) over the knowledge base plus: the bundled cases' patients in the fact
    classes the rules gave them; one individual per case sheet of tests/test_outputs.py in the fact
    classes the independent implementation of the policy gives its facts; and one probe class per pair
    of classes that the policy says no patient can be in at once (a fact true and false; unresectable and
    resected) or that it says one can (controls). Returns each population's instances and the probes
    found unsatisfiable."""
    import owlready2

    kb = check.knowledge_base()
    classes = _fact_classes(kb)
    assert set(classes) >= set(policy_oracle.FACTS), "a fact of the policy has no classes"
    graph = kb + Graph()
    for r in _rows(store, CLASSES):
        graph.add((URIRef(r["patient"]), RDF.type, URIRef(r["class"])))
    for sheet in ORACLE_SHEETS:
        for cls in _oracle_classes(sheet, classes):
            graph.add((ORACLE[sheet["id"]], RDF.type, cls))
    probes = {}
    for name, (first, second) in _probe_pairs(classes).items():
        probe = PROBE[name]
        members = BNode()
        Collection(graph, members, [first, second])
        intersection = BNode()
        graph.add((intersection, RDF.type, OWL.Class))
        graph.add((intersection, OWL.intersectionOf, members))
        graph.add((probe, RDF.type, OWL.Class))
        graph.add((probe, OWL.equivalentClass, intersection))
        probes[name] = str(probe)
    graph.remove((None, OWL.imports, None))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "kb.nt"
        graph.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        ontology = world.get_ontology(path.as_uri()).load(format="ntriples")
        with ontology:
            owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        unsatisfiable = {c.iri for c in world.inconsistent_classes()}
        populations = {}
        for statement, population in kb.subject_objects(HAIP.addressesPopulation):
            outside = kb.value(statement, HAIP.outsidePopulation)
            populations[str(kb.value(statement, HAIP.slug))] = (
                {i.iri for i in world[str(population)].instances()},
                {i.iri for i in world[str(outside)].instances()},
            )
    return {
        "populations": populations,
        "unsatisfiable": {name for name, iri in probes.items() if iri in unsatisfiable},
        "classes": classes,
    }


ORACLE = Namespace("urn:test:oracle:")
PROBE = Namespace("urn:test:probe:")
DISJOINT_BY_POLICY = ("unresectable+resected",)
"""Pairs of positive fact classes the policy makes disjoint (decision policy v1: "The two populations are
**disjoint** ... in OWL: disjoint classes"); besides, every fact's positive and negative class."""
COMPATIBLE_BY_POLICY = (
    "unresectable+extrahepatic-disease",
    "resected+in-haip-trial",
    "unresectable+adenocarcinoma",
)
"""Controls: pairs the policy lets a patient be in together."""


def _probe_pairs(classes: dict[str, tuple[URIRef, URIRef]]) -> dict[str, tuple[URIRef, URIRef]]:
    pairs = {f"{slug}-true+false": (positive, negative) for slug, (positive, negative) in classes.items()}
    for name in (*DISJOINT_BY_POLICY, *COMPATIBLE_BY_POLICY):
        first, second = name.split("+")
        pairs[name] = (classes[first][0], classes[second][0])
    return pairs


def _status(inside: set[str], outside: set[str], iri: str) -> str:
    return "applies" if iri in inside else "not-applicable" if iri in outside else "undetermined"


def test_hermit_classifies_as_the_rules_decide(store: Any, hermit: dict[str, Any]) -> None:
    """HermiT, given the fact classes the rules found, puts each bundled case in the populations whose
    statuses the rules (OWL RL reasoning with reasonable) gave."""
    checked = 0
    for row in _rows(store, STATUSES):
        inside, outside = hermit["populations"][row["statement"]]
        assert _status(inside, outside, row["patient"]) == row["status"], row
        checked += 1
    assert checked >= 7 * 40


def test_both_reasoners_classify_the_policys_facts_into_the_policys_populations(
    hermit: dict[str, Any],
) -> None:
    """Independent of the rules: the fact classes of each case sheet's facts as the independent
    implementation of the policy decides them, classified by HermiT and by OWL RL (reasonable, as the
    engine runs it), give every statement the status that implementation gives. A wrong population
    axiom cannot pass this in both reasoners."""
    kb = check.knowledge_base()
    populations = {
        str(kb.value(s, HAIP.slug)): (str(p), str(kb.value(s, HAIP.outsidePopulation)))
        for s, p in kb.subject_objects(HAIP.addressesPopulation)
    }
    signatures = [
        frozenset(str(c) for c in _oracle_classes(sheet, hermit["classes"])) for sheet in ORACLE_SHEETS
    ]
    owl_rl = _entailed(list(engine.tbox_axioms()), signatures)
    checked = 0
    for sheet, signature, entailed in zip(ORACLE_SHEETS, signatures, owl_rl, strict=True):
        for statement, (inside, outside) in hermit["populations"].items():
            expected = _oracle_status(sheet, statement)
            assert _status(inside, outside, str(ORACLE[sheet["id"]])) == expected, (sheet["id"], statement)
            population, outside_population = populations[statement]
            classes = entailed | signature
            rl = _status(
                {"x"} if population in classes else set(),
                {"x"} if outside_population in classes else set(),
                "x",
            )
            assert rl == expected, (sheet["id"], statement, "OWL RL")
            checked += 1
    assert checked >= 7 * 400


def test_the_policys_disjoint_populations_are_disjoint_in_owl(hermit: dict[str, Any]) -> None:
    """No patient can be in a fact's positive and negative class, nor unresectable and resected at once
    (HermiT finds each intersection unsatisfiable), while the controls stay satisfiable."""
    expected = {f"{slug}-true+false" for slug in hermit["classes"]} | set(DISJOINT_BY_POLICY)
    assert hermit["unsatisfiable"] == expected


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
