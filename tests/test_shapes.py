"""The input contract: every file in tests/shapes/valid/ conforms; each file in tests/shapes/invalid/ is
refused for the reason its name says: <key>--<reason>[--<note>].json|.ttl names the key that must be
reported (in a native-RDF fixture a property written prefix.name, e.g. haip.progresed for haip:progresed)
and the reason, which names the bound of shapes/case.shapes.ttl or the check of queries/input/ that
refuses it. Every bound has such a fixture, and every inclusive numeric bound a valid one at the bound."""

from __future__ import annotations

import random
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import case_files
from rdflib import RDF, RDFS, Graph, Literal
from rdflib.term import Node
from test_differential import CASES as RANDOM_SHEETS

from haip_kg import engine, evaluate, inputs, resources, validate
from haip_kg.namespaces import PREFIXES, SH

SHAPES = Path(__file__).parent / "shapes"
INPUTS = Path(__file__).parent / "inputs"
VALID = sorted((SHAPES / "valid").iterdir())
INVALID = sorted((SHAPES / "invalid").iterdir())
INPUT_CHECKS = tuple(f"input:{path.stem}" for path in resources.input_check_files())

REASONS = {
    "given-twice": {"MaxCount"},
    "missing": {"MinCount"},
    "not-allowed": {"In"},
    "wrong-unit": {"In"},
    "not-boolean": {"Datatype"},
    "not-whole": {"Datatype"},
    "not-a-number": {"Datatype"},
    "not-text": {"Datatype"},
    "negative": {"MinInclusive", "MinExclusive"},
    "zero": {"MinExclusive"},
    "over": {"MaxInclusive", "MaxExclusive"},
}
"""The first word(s) of a fixture's reason, and the SHACL constraint components that refuse for it."""
NOT_CONSTRAINTS = {
    SH[name]
    for name in [
        "path",
        "targetClass",
        "targetSubjectsOf",
        "targetObjectsOf",
        "targetNode",
        "property",
        "severity",
        "message",
        "name",
        "description",
        "order",
        "group",
        "deactivated",
        "ignoredProperties",
    ]
}


def _records(path: Path) -> list[dict]:
    return [o.record for b in evaluate.evaluate(inputs.read(str(path))) for o in b.outcomes]


def _fixture_key(path: Path) -> str:
    key = path.stem.split("--")[0]
    prefix, _, name = key.partition(".")
    return f"{prefix}:{name}" if prefix in PREFIXES and name else key


def _constraints(path: Path) -> set[str]:
    """What refuses the fixture, by the reason its name says."""
    reason = path.stem.split("--")[1]
    if f"input:{reason}" in INPUT_CHECKS:
        return {f"input:{reason}"}
    words = [w for w in REASONS if reason == w or reason.startswith(f"{w}-")]
    assert words, f"{path.name}: unknown reason {reason!r}; use one of {sorted(REASONS)} or {INPUT_CHECKS}"
    return {str(SH[f"{c}ConstraintComponent"]) for c in REASONS[words[0]]}


@cache
def _findings(path: Path) -> tuple[validate.Finding, ...]:
    """The findings of one file's cases, as evaluate finds them (shapes, and the vocabulary for RDF)."""
    cases = [c for c in inputs.read(str(path)) if not c.errors]
    data = {i: engine.ntriples_of(c.triples) for i, c in enumerate(cases)}
    node_keys = {k: v for c in cases for k, v in c.node_keys.items()}
    described = [(i, c.triples, data[i]) for i, c in enumerate(cases)]
    found = validate.batch_findings(described, node_keys, validate.data_store(data.values()))
    native = [d for d, c in zip(described, cases, strict=True) if not c.converted]
    found = validate.combine(found, validate.vocabulary_findings(native)) if native else found
    return tuple(f for each in found.values() for f in each)


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
    key = _fixture_key(path)
    (record,) = _records(path)
    assert "errors" in record, f"{path.name} was decided"
    assert record["source"] == str(path)
    assert {e["key"] for e in record["errors"]} == {key}, f"expected errors on {key} only: {record['errors']}"
    if path.suffix == ".json":  # a case sheet with one bad value: exactly one error
        assert len(record["errors"]) == 1, record["errors"]
    for error in record["errors"]:  # the message names the key itself (no <lab>, [i] or {key} placeholder)
        assert key in error["message"] and "{" not in error["message"], error
    constraints = _constraints(path)
    reasons = {f.constraint for f in _findings(path) if f.key == key}
    assert reasons & constraints, f"{path.name}: refused for {reasons}, not for {constraints}"


def _bounds() -> dict[tuple[Node | None, str], str]:
    """Every bound that refuses a case: (shape, SHACL constraint component) for each constraint of each
    shape of shapes/case.shapes.ttl whose severity is violation, and (None, input:<name>) for each check
    in queries/input/; with a readable name."""
    shapes = validate.shapes_graph()
    out: dict[tuple[Node | None, str], str] = {}
    for shape, parameter, _value in shapes:
        if str(parameter).startswith(str(SH)) and parameter not in NOT_CONSTRAINTS:
            if shapes.value(shape, SH.severity) != SH.Violation:
                continue  # a warning (conflicting facts) does not refuse a case (see tests/cases)
            owner = shapes.value(None, SH.property, shape) or shape
            label = f"{shapes.value(owner, RDFS.label)} {shapes.value(shape, SH.path)}"
            name = str(parameter).removeprefix(str(SH))
            out[(shape, str(SH[f"{name[0].upper()}{name[1:]}ConstraintComponent"]))] = f"{label} sh:{name}"
    out.update({(None, check): f"queries/input/{check[6:]}.rq" for check in INPUT_CHECKS})
    return out


def test_every_bound_has_an_invalid_fixture() -> None:
    """A bound added to the shapes (or a check to queries/input/) without a fixture in tests/shapes/invalid/
    that it refuses, for the reason the fixture's name says, fails here by name."""
    covered = {
        (f.source, f.constraint)
        for path in INVALID
        for f in _findings(path)
        if f.key == _fixture_key(path) and f.constraint in _constraints(path)
    }
    missing = sorted(name for bound, name in _bounds().items() if bound not in covered)
    assert not missing, f"bounds without an invalid fixture in {SHAPES / 'invalid'}: {missing}"
    assert len(_bounds()) > 150


def test_every_inclusive_bound_has_a_valid_fixture_at_the_bound() -> None:
    """The value exactly at an inclusive bound is valid: a valid fixture has a node of the shape's class
    with exactly that value."""
    shapes = validate.shapes_graph()
    triples = {t for path in VALID for c in inputs.read(str(path)) for t in c.triples}
    missing = []
    for parameter in (SH.minInclusive, SH.maxInclusive):
        for shape, bound in shapes.subject_objects(parameter):
            node_class = shapes.value(shapes.value(None, SH.property, shape), SH.targetClass)
            path = shapes.value(shape, SH.path)
            at_bound = {
                s
                for s, p, o in triples
                if p == path and isinstance(o, Literal) and Decimal(str(o)) == Decimal(str(bound))
            }
            if not any((s, RDF.type, node_class) in triples for s in at_bound):
                missing.append(f"{node_class} {path} = {bound}")
    assert not missing, f"no valid fixture at these bounds in {SHAPES / 'valid'}: {missing}"


def test_a_case_sheet_cannot_fail_the_vocabulary_checks() -> None:
    """Why the checks of queries/input/ run on native RDF only: on every case sheet of the fixtures and
    the corpus, what they find a shape finds too (a value not in the allowed codes), so they add nothing."""
    paths = [p for p in [*VALID, *INVALID, *case_files()] if p.suffix in (".json", ".csv")]
    cases = [c for path in paths for c in inputs.read(str(path)) if not c.errors and c.converted]
    assert len(cases) > 150
    for case in cases:
        described = [(0, case.triples, engine.ntriples_of(case.triples))]
        vocabulary = validate.vocabulary_findings(described).get(0, [])
        shapes = validate.batch_findings(described, case.node_keys, validate.data_store([described[0][2]]))
        said = {(f.focus, f.path, f.value) for f in shapes.get(0, [])}
        assert {(f.focus, f.path, f.value) for f in vocabulary} <= said, (case.case_id, vocabulary)


def test_native_rdf_in_the_issue_is_refused_with_a_message_that_names_the_node() -> None:
    """The examples of the issue: a misspelt predicate (with a suggestion from the ontology), an untyped
    regimen course, a literal where an IRI is required: each one error, naming the node and the fix."""
    expected = {
        "haip.progresed--undeclared-property.ttl": ["did you mean haip:progressed?", "by haip:hasSystemic"],
        "haip.hasRegimenCourse--object-outside-range.ttl": ["not typed as a haip:RegimenCourse"],
        "haip.therapySetting--object-outside-range.ttl": ["'metastatic'", "haip:Metastatic"],
        "rdf.type--undeclared-class.ttl": ["did you mean haip:RegimenCourse?"],
        "haip.age--literal-expected.ttl": ["haip:Colon", "xsd:integer"],
    }
    for name, words in expected.items():
        (record,) = _records(SHAPES / "invalid" / name)
        (error,) = record["errors"]
        for word in words:
            assert word in error["message"], (name, error)


def test_both_shacl_engines_report_the_same_findings() -> None:
    """pyshacl-turbo (the default, for speed) agrees with pySHACL (the reference) on every fixture."""
    read = [(path, c) for path in [*VALID, *INVALID] for c in inputs.read(str(path)) if not c.errors]
    cases = [c for _path, c in read]
    data = Graph()
    node_keys: dict = {}
    for case in cases:
        for triple in case.triples:
            data.add(triple)
        node_keys.update(case.node_keys)
    owner = validate.owner_index([(i, c.triples) for i, c in enumerate(cases)])
    turbo = validate.findings(data, owner, node_keys, engine="turbo")
    reference = validate.findings(data, owner, node_keys, engine="pyshacl")
    refused_by_shapes = {
        i
        for i, (path, _c) in enumerate(read)
        if path in INVALID and not _constraints(path) <= set(INPUT_CHECKS)
    }
    assert refused_by_shapes <= set(turbo) and len(refused_by_shapes) > 150
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
    # the vocabulary checks follow the case's subclass axiom too: the tumour is a haip:PrimaryTumour, and
    # only haip:Liver (not an individual of the ontology: haip:LiverSite is) is out of range
    described = [(0, cases[0].triples, engine.ntriples_of(cases[0].triples))]
    assert [f.key for f in validate.vocabulary_findings(described)[0]] == ["haip:primarySite"]


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
