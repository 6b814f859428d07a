"""The input contract: every file in tests/shapes/valid/ conforms; each file in tests/shapes/invalid/ is
refused for the reason its name says (<key>--<reason>.json names the key that must be reported)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from conftest import case_files
from rdflib import Graph
from test_differential import CASES as RANDOM_SHEETS

from haip_kg import engine, evaluate, inputs, validate

SHAPES = Path(__file__).parent / "shapes"
INPUTS = Path(__file__).parent / "inputs"
VALID = sorted((SHAPES / "valid").iterdir())
INVALID = sorted((SHAPES / "invalid").iterdir())


def _records(path: Path) -> list[dict]:
    return [o.record for b in evaluate.evaluate(inputs.read(str(path))) for o in b.outcomes]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_input_conforms(path: Path) -> None:
    records = _records(path)
    assert records, "no case read"
    for record in records:
        assert "errors" not in record, record.get("errors")
        assert record["validation"]["conforms"] is True
        assert [r for r in record["validation"]["results"] if r["severity"] == "violation"] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_input_is_refused_for_its_reason(path: Path) -> None:
    key = path.stem.split("--")[0]
    (record,) = _records(path)
    assert "verdict" not in record
    assert record["source"] == str(path)
    reported = {e["key"] for e in record["errors"]}
    assert key in reported, f"expected an error on {key}, got {record['errors']}"
    for error in record["errors"]:
        assert error["message"].strip(), "every error needs a message"


def test_both_shacl_engines_report_the_same_findings() -> None:
    """pyshacl-turbo (the default, for speed) agrees with pySHACL (the reference) on every fixture."""
    cases = [c for path in [*VALID, *INVALID] for c in inputs.read(str(path)) if not c.errors]
    data = Graph()
    node_keys: dict = {}
    for case in cases:
        for triple in case.triples:
            data.add(triple)
        node_keys.update(case.node_keys)
    owner = validate.owner_index([(i, c.triples) for i, c in enumerate(cases)])
    turbo = validate.findings(data, owner, node_keys, engine="turbo")
    reference = validate.findings(data, owner, node_keys, engine="pyshacl")
    assert len(turbo) == len(INVALID)
    assert {i: set(f) for i, f in turbo.items()} == {i: set(f) for i, f in reference.items()}


# Validating one stand-in node per node description (validate.batch_findings) against validating the
# whole batch graph (validate.findings): the same findings, in the same order, batch by batch.


def _fixture_cases() -> list[inputs.Case]:
    paths = [*VALID, *INVALID, *case_files(), *sorted(INPUTS.iterdir())]
    read = [c for path in paths for c in inputs.read(str(path))]
    corrupted = []
    rng = random.Random(3)
    for index, sheet in enumerate(RANDOM_SHEETS[:120]):
        sheet = dict(sheet, id=f"corrupted-{index}")
        key, value = rng.choice(CORRUPTIONS)
        if rng.random() < 0.5:
            sheet[key] = value
        corrupted.append(sheet)
    return [c for c in read + list(inputs._from_sheets("corrupted", corrupted)) if not c.errors]


CORRUPTIONS = [
    ("age", 130),
    ("ecog", 7),
    ("liver_involvement_pct", 140),
    ("liver_mets_count", -2),
    ("largest_liver_met_cm", 0),
    ("months_since_liver_resection", -1),
    ("bilirubin_total", {"value": 1.2, "unit": "umol/L", "uln": 0}),
]


def _both_ways(cases: list[inputs.Case]) -> tuple[dict[int, list[validate.Finding]], ...]:
    indexed = list(enumerate(cases))
    data = {i: engine.ntriples_of(c.triples) for i, c in indexed}
    node_keys = {k: v for _i, c in indexed for k, v in c.node_keys.items()}
    whole = validate.findings(
        validate.data_store(data.values()),
        validate.owner_index([(i, c.triples) for i, c in indexed]),
        node_keys,
    )
    by_description = validate.batch_findings(
        [(i, c.triples, data[i]) for i, c in indexed], node_keys, validate.data_store(data.values())
    )
    return whole, by_description


@pytest.mark.parametrize("batch_size", [1, 7, 50, 1000])
def test_findings_by_node_description_equal_whole_batch_validation(batch_size: int, monkeypatch: Any) -> None:
    cases = _fixture_cases()
    random.Random(batch_size).shuffle(cases)
    validate._DESCRIBED.clear()
    validate._VALIDATED_ONCE.clear()
    engine_calls: list[int] = []
    by_engine = validate._engine_results

    def counted(data: Any, engine_name: Any) -> Any:
        engine_calls.append(len(data))
        return by_engine(data, engine_name)

    monkeypatch.setattr(validate, "_engine_results", counted)
    refused = 0
    for run in range(3):  # a description is kept when validated a second time; the third run is all kept
        engine_calls.clear()
        for start in range(0, len(cases), batch_size):
            whole, by_description = _both_ways(cases[start : start + batch_size])
            assert by_description == whole
            refused += len(whole) if run == 2 else 0
    assert refused >= len(INVALID) + 30, "the cases must include many with findings"
    assert len(engine_calls) == len(range(0, len(cases), batch_size)), "only whole-batch validations"


def test_a_node_described_by_two_cases_is_judged_on_all_its_triples(tmp_path: Path) -> None:
    """Two files describe the same treating centre capability differently (two availabilities): in one
    batch that is one node with two values, a violation, as when the whole batch is validated."""
    template = (
        "@prefix haip: <https://w3id.org/haip/> . @prefix dcterms: <http://purl.org/dc/terms/> .\n"
        "<https://example.org/p{n}> a haip:Patient ; dcterms:identifier 'p{n}' ;\n"
        "  haip:treatedAt <https://example.org/centre> .\n"
        "<https://example.org/centre> a haip:TreatingCentre ;\n"
        "  haip:hasCapability <https://example.org/nursing> .\n"
        "<https://example.org/nursing> a haip:CapabilityAvailability ; haip:availability haip:{value} .\n"
    )
    for n, value in ((1, "Available"), (2, "NotAvailable")):
        (tmp_path / f"p{n}.ttl").write_text(template.format(n=n, value=value))
    cases = [c for n in (1, 2) for c in inputs.read(str(tmp_path / f"p{n}.ttl"))]
    assert not any(c.errors for c in cases)
    whole, by_description = _both_ways(cases)
    assert by_description == whole
    assert any("must be one of" in f.message for found in whole.values() for f in found), whole
    for case in cases:  # each case alone conforms
        assert _both_ways([case]) == ({}, {})


def test_a_batch_stating_subclasses_is_validated_whole(tmp_path: Path) -> None:
    """SHACL targets follow rdfs:subClassOf in the data: a node typed with a subclass of haip:Patient
    stated in another case is checked as a patient."""
    (tmp_path / "cases.ttl").write_text(
        "@prefix haip: <https://w3id.org/haip/> . @prefix dcterms: <http://purl.org/dc/terms/> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<https://example.org/p1> a haip:Patient ; dcterms:identifier 'p1' ;\n"
        "  haip:hasPrimaryTumour <https://example.org/t1> .\n"
        "<https://example.org/t1> a <https://example.org/Tumour> ; haip:primarySite haip:Liver .\n"
        "<https://example.org/Tumour> rdfs:subClassOf haip:PrimaryTumour .\n"
    )
    cases = list(inputs.read(str(tmp_path / "cases.ttl")))
    whole, by_description = _both_ways(cases)
    assert by_description == whole
    assert [f.key for found in whole.values() for f in found] == ["primary_site"]


@pytest.mark.parametrize(
    "shape",
    [
        "sh:property [ sh:path haip:hasPrimaryTumour ; sh:class haip:PrimaryTumour ]",
        "sh:property [ sh:path ( haip:hasPrimaryTumour haip:histology ) ; sh:maxCount 1 ]",
        "sh:property [ sh:path haip:age ; sh:pattern '^1' ]",
        "sh:in ( haip:Colon )",
        "sh:targetNode haip:Colon",
        "sh:sparql [ sh:select 'SELECT $this WHERE { }' ]",
        "sh:property [ sh:path haip:hasPrimaryTumour ; sh:message 'm' ;"
        " sh:property [ sh:path haip:histology ; sh:minCount 1 ; sh:message 'm' ] ]",
        "sh:property [ sh:path haip:age ; sh:maxCount 1 ]",  # the engine's own message names the node
        "owl:imports <https://example.org/more-shapes>",
    ],
)
def test_shapes_that_look_beyond_a_node_are_not_local(shape: str) -> None:
    graph = Graph().parse(
        data="@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix haip: <https://w3id.org/haip/> .\n"
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        f"haip:S a sh:NodeShape ; sh:targetClass haip:Patient ; {shape} .",
        format="turtle",
    )
    assert not validate.shapes_are_local(graph)


def test_the_case_shapes_are_local() -> None:
    assert validate.shapes_are_local(validate.shapes_graph())
    local = (
        "@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix haip: <https://w3id.org/haip/> .\n"
        "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ;\n"
        "  sh:property [ sh:path haip:age ; sh:maxCount 1 ; sh:minInclusive 0 ; sh:message 'm' ] ."
    )
    assert validate.shapes_are_local(Graph().parse(data=local, format="turtle"))


def test_a_shared_node_belongs_to_the_last_case_that_states_it(tmp_path: Path) -> None:
    """A node one file types and gives a bad value, and another file only labels: its findings go to the
    case of the second file, as when the whole batch is validated (the last case stating the node)."""
    head = (
        "@prefix haip: <https://w3id.org/haip/> . @prefix dcterms: <http://purl.org/dc/terms/> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<https://example.org/p{n}> a haip:Patient ; dcterms:identifier 'p{n}' ;\n"
        "  haip:treatedAt <https://example.org/centre{n}> .\n"
        "<https://example.org/centre{n}> a haip:TreatingCentre ;\n"
        "  haip:hasCapability <https://example.org/nursing> .\n"
    )
    (tmp_path / "p1.ttl").write_text(
        head.format(n=1) + "<https://example.org/nursing> a haip:CapabilityAvailability ;\n"
        "  haip:availability haip:Bogus .\n"
    )
    (tmp_path / "p2.ttl").write_text(head.format(n=2) + "<https://example.org/nursing> rdfs:label 'n' .\n")
    cases = [c for n in (1, 2) for c in inputs.read(str(tmp_path / f"p{n}.ttl"))]
    whole, by_description = _both_ways(cases)
    assert list(whole) == [1]
    assert by_description == whole
