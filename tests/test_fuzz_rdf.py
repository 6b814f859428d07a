"""The native RDF reader under random input (hypothesis, seeded): random graphs over the ontology's own
vocabulary (declared and misspelt properties, individuals, literals of every kind, blank and IRI nodes,
cycles, nodes shared by two patients) and random bytes given as Turtle. Reading and deciding never
raises; every haip:Patient the graph types gets exactly one record (decided, or refused with a message
that names what is wrong); a document that is not RDF gives one error record."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import OWL, RDF, Graph

from haip_kg import evaluate, inputs, resources
from haip_kg.namespaces import HAIP

FUZZ = settings(
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _vocabulary() -> tuple[list[str], list[str], list[str]]:
    """The ontology's properties and classes (read from it, with misspellings added), and individuals."""
    graph = Graph()
    for path in resources.tbox_files():
        graph.parse(path, format="turtle")
    properties = sorted(
        str(p)
        for kind in (OWL.ObjectProperty, OWL.DatatypeProperty)
        for p in graph.subjects(RDF.type, kind)
        if str(p).startswith(str(HAIP))
    )
    classes = sorted(str(c) for c in graph.subjects(RDF.type, OWL.Class) if str(c).startswith(str(HAIP)))
    individuals = sorted(
        str(i) for i in graph.subjects(RDF.type, OWL.NamedIndividual) if str(i).startswith(str(HAIP))
    )
    misspelt = [p[:-1] for p in properties[:5]] + [str(HAIP) + "progresed", "https://example.org/other#p"]
    return properties + misspelt, classes, individuals


PROPERTIES, CLASSES, INDIVIDUALS = _vocabulary()
NODES = [f"_:b{n}" for n in range(4)] + [f"<https://example.org/n/{n}>" for n in range(3)]
PATIENTS = ["<https://example.org/p/1>", "<urn:x:p2>", "<https://example.org/p#3>", "_:patient"]

LITERALS = ['"x"', '"é b"', "true", "false", "0", "-3", "2.5", "1e400", '"2"^^xsd:integer', '"a"@fr', '""']


def _random_graph(rnd: random.Random) -> tuple[list[str], list[tuple[str, str, str]]]:
    """Typed patients and 8-40 random triples among them, the nodes, the ontology's terms and literals
    (a seed drives it, so that graphs vary: shared and cyclic blank nodes, wrong kinds of values...)."""
    patients = rnd.sample(PATIENTS, rnd.randint(1, 3))
    body = []
    for _ in range(rnd.randint(8, 40)):
        subject = rnd.choice(patients + NODES)
        predicate = "a" if rnd.random() < 0.2 else f"<{rnd.choice(PROPERTIES)}>"
        kind = rnd.random()
        if kind < 0.4:
            obj = rnd.choice(PATIENTS + NODES)
        elif kind < 0.6:
            obj = f"<{rnd.choice(INDIVIDUALS)}>"
        elif kind < 0.7:
            obj = f"<{rnd.choice(CLASSES)}>"
        else:
            obj = rnd.choice(LITERALS)
        body.append((subject, predicate, obj))
    return patients, body


def _turtle(patients: list[str], body: list[tuple[str, str, str]]) -> str:
    lines = ["@prefix xsd: <http://www.w3.org/2001/XMLSchema#> ."]
    lines += [f"{p} a <{HAIP}Patient> ; <http://purl.org/dc/terms/identifier> {p!r} ." for p in patients]
    lines += [f"{s} {p} {o} ." for s, p, o in body]
    return "\n".join(lines).replace("'", '"')


def _records(path: Path) -> list[dict[str, Any]]:
    items = list(inputs.read_items(str(path)))
    return [outcome.record for batch in evaluate.evaluate(items) for outcome in batch.outcomes]


def _typed_patients(text: str) -> int:
    store = ox.Store()
    store.load(text, format=ox.RdfFormat.TURTLE)
    return len(
        {
            q.subject
            for q in store.quads_for_pattern(None, ox.NamedNode(str(RDF.type)), None)
            if q.object == ox.NamedNode(str(HAIP.Patient))
        }
    )


@FUZZ
@given(seed=st.integers(0, 2**32 - 1))
def test_random_graphs_get_one_record_per_patient(tmp_path: Path, seed: int) -> None:
    text = _turtle(*_random_graph(random.Random(seed)))
    path = tmp_path / "cases.ttl"
    path.write_text(text, encoding="utf-8")
    try:
        expected = _typed_patients(text)
    except SyntaxError:  # e.g. a literal in subject position: one error record for the file
        expected = 1
    records = _records(path)
    assert len(records) == expected, (text, records)
    for record in records:
        if "errors" in record:
            assert record["errors"] and all(e["message"].strip() for e in record["errors"])
            assert all("<" not in e["message"] or ">" in e["message"] for e in record["errors"])
        else:
            assert set(record["statements"]) and record["verdict"]


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace")))
def test_random_bytes_as_turtle_never_raise(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.ttl"
    path.write_bytes(data)
    records = _records(path)
    assert records, "every file gets at least one record"
    for record in records:
        assert "errors" in record or "verdict" in record
