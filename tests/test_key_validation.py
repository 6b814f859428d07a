"""Case sheets validated per (key, value) (keyvalidation.sheet_findings) against their converted triples
validated by node description (validate.batch_findings): the same findings in the same order, on the
fixtures, the corpus, the examples and random sheets (hypothesis, seeded) with valid and invalid values;
the locality check says no to shapes that would not decompose by key; the cache is used and bounded."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pyshacl_turbo
import pytest
from conftest import case_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rdflib import Graph, Literal, URIRef

from haip_kg import casesheet, engine, inputs, keyvalidation, resources, validate
from haip_kg.casesheet import KeyDef
from haip_kg.namespaces import SH

TESTS = Path(__file__).parent
RANDOM = settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
"""The fixture that swaps the shapes holds for every example: the cache of (key, value) findings is meant
to carry over between them."""


def _by_description(sheets: list[Any]) -> dict[int, list[validate.Finding]]:
    """What validating the sheets converted gives today (every converted triple, errors or not)."""
    cases = [inputs.to_case(inputs.Sheet("test", i, sheet)) for i, sheet in enumerate(sheets)]
    data = {i: engine.ntriples_of(case.triples) for i, case in enumerate(cases)}
    node_keys = {node: key for case in cases for node, key in case.node_keys.items()}
    described = [(i, case.triples, data[i]) for i, case in enumerate(cases)]
    return validate.batch_findings(described, node_keys, validate.data_store(data.values()))


def _same_both_ways(sheets: list[Any]) -> dict[int, list[validate.Finding]]:
    expected = _by_description(sheets)
    assert keyvalidation.sheet_findings(list(enumerate(sheets))) == expected
    return expected


def _unique_ids(sheets: list[Any]) -> list[Any]:
    """Sheets with ids made unique (in one run, a second sheet with an id is refused before validation)."""
    return [
        dict(sheet, id=f"{sheet['id']}-{n}") if inputs.Sheet("", n, sheet).case_id else sheet
        for n, sheet in enumerate(sheets)
    ]


@cache
def _fixture_sheets() -> tuple[Any, ...]:
    paths = [
        *sorted((TESTS / "shapes" / "valid").iterdir()),
        *sorted((TESTS / "shapes" / "invalid").iterdir()),
        *case_files(),
        *sorted((TESTS / "inputs").iterdir()),
        resources.examples_dir() / "cases.json",
    ]
    items = [item for path in paths for item in inputs.read_items(str(path))]
    return tuple(_unique_ids([item.data for item in items if isinstance(item, inputs.Sheet)]))


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_fixtures_corpus_and_examples_have_the_same_findings_by_key(batch_size: int) -> None:
    keyvalidation.clear_cache()
    sheets = list(_fixture_sheets())
    found = 0
    for _run in range(2):  # cold, then every value cached
        for start in range(0, len(sheets), batch_size):
            found += sum(len(f) for f in _same_both_ways(sheets[start : start + batch_size]).values())
    assert found >= 2 * 140, "the fixtures must include many findings"


# --- random case sheets, drawn from the mapping ---------------------------------------------------------

TABLE = casesheet.mapping()


def _scalars(key: KeyDef, repeat: bool) -> st.SearchStrategy[Any]:
    """Values for one scalar: allowed codes, numbers in and out of range, wrong types. With `repeat`, from
    small sets (values recur across cases), else spread wide (one-decimal numbers, text)."""
    codes = TABLE.allowed_codes(key.value_class) if key.value_class is not None else []
    if repeat:
        return st.sampled_from([*codes, "unknown", True, False, 0, 1, -1, 3, 7, 130, 0.5, -2.5, "12", ""])
    return st.one_of(
        st.sampled_from(codes or ["unknown"]),
        st.booleans(),
        st.integers(-50, 500),
        st.integers(-500, 5000).map(lambda n: n / 10),
        st.text(max_size=6),
    )


def _value(name: str, repeat: bool) -> st.SearchStrategy[Any]:
    key = TABLE.keys[name]
    fields = TABLE.sub_keys.get(name, {})
    wrong = (
        st.sampled_from([{"x": 1}, [1], "text", 2])
        if repeat
        else st.one_of(st.text(max_size=4), st.integers())
    )
    if key.shape == "scalar":
        return st.one_of(_scalars(key, repeat), st.just([True]))
    if key.shape == "list":
        return st.one_of(st.lists(_scalars(key, repeat), max_size=3), _scalars(key, repeat))  # [], duplicates
    item = st.fixed_dictionaries(
        {},
        optional={
            **{field: _scalars(definition, repeat) for field, definition in fields.items()},
            "unknown_field": st.just(1),
            "_note": st.just("kept out"),
        },
    )
    if key.shape == "object":
        return st.one_of(item, wrong)
    return st.one_of(st.lists(st.one_of(item, st.none()), max_size=3), wrong)


def _sheets(repeat: bool) -> st.SearchStrategy[list[Any]]:
    keys = sorted(name for name in TABLE.keys if name != "id")
    sheet = st.fixed_dictionaries(
        {},
        optional={
            **{name: _value(name, repeat) for name in keys},
            "unknown_key": st.just(1),
            "_comment": st.just("kept out"),
            "age_": st.none(),
        },
    )
    ids = st.sampled_from(["id", "id", "id", "id", "missing", "blank", "number"])
    cases = st.lists(st.tuples(sheet, ids), min_size=1, max_size=12)
    bad_id: dict[str, Any] = {"blank": " ", "number": 5}
    return cases.map(
        lambda drawn: [
            sheet if kind == "missing" else {"id": bad_id.get(kind, f"p{n}"), **sheet}
            for n, (sheet, kind) in enumerate(drawn)
        ]
    )


@RANDOM
@given(_sheets(repeat=True))
def test_random_sheets_whose_values_recur_have_the_same_findings_by_key(sheets: list[Any]) -> None:
    _same_both_ways(sheets)


@RANDOM
@given(_sheets(repeat=False))
def test_random_sheets_with_values_spread_wide_have_the_same_findings_by_key(sheets: list[Any]) -> None:
    _same_both_ways(sheets)


def test_random_sheets_make_findings_of_every_kind() -> None:
    """The random sheets above reach several kinds of constraint (so that their equality means something)."""
    drawn: list[list[Any]] = []

    @settings(derandomize=True, max_examples=40, database=None)
    @given(_sheets(repeat=True))
    def collect(sheets: list[Any]) -> None:
        drawn.append(sheets)

    collect()
    kinds = {
        f.constraint.rsplit("#", 1)[-1]
        for sheets in drawn
        for found in _by_description(sheets).values()
        for f in found
        if f.constraint
    }
    assert {"DatatypeConstraintComponent", "InConstraintComponent", "MinCountConstraintComponent"} <= kinds


def test_an_evicted_value_is_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyvalidation, "MAX_ENTRIES", 3)
    keyvalidation.clear_cache()
    sheets = [
        {"id": "a", "age": 150, "sex": "female", "ecog": 9, "cea": {"value": -1, "unit": "ng/mL"}},
        {"id": "b", "age": 150, "sex": "x", "bilirubin_total": {"value": 1.0}},
    ]
    for _run in range(3):
        _same_both_ways(sheets)
        assert keyvalidation.cache_info()["size"] <= 3


# --- a required key missing: findings that depend on absence ---------------------------------------------

# Violations, not warnings: validate drops the results of a graph that conforms but for warnings, so which
# warnings are found would depend on what else is validated with them.
REQUIRED = """
@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix haip: <https://w3id.org/haip/> .
haip:RequiredAge a sh:NodeShape ; sh:targetClass haip:Patient ;
  sh:property [ sh:path haip:age ; sh:minCount 1 ; sh:severity sh:Violation ;
    sh:message "age is required"@en ] .
haip:RequiredSite a sh:NodeShape ; sh:targetClass haip:PrimaryTumour ;
  sh:property [ sh:path haip:primarySite ; sh:minCount 1 ; sh:severity sh:Violation ;
    sh:message "primary_site is required with any primary tumour fact"@en ] .
"""


def _with_shapes(monkeypatch: pytest.MonkeyPatch, extra: str) -> Graph:
    """The case shapes and `extra`, in place of the case shapes for this test (caches emptied)."""
    shapes = Graph().parse(resources.case_shapes_file(), format="turtle").parse(data=extra, format="turtle")
    compiled = pyshacl_turbo.CompiledShapes(shapes, advanced=True)  # type: ignore[no-untyped-call]
    monkeypatch.setattr(validate, "shapes_graph", lambda: shapes)
    monkeypatch.setattr(validate, "compiled_shapes", lambda: compiled)
    monkeypatch.setattr(validate, "_case_shapes_are_local", lambda: validate.shapes_are_local(shapes))
    monkeypatch.setattr(validate, "_read_predicates", cache(validate._read_predicates.__wrapped__))
    monkeypatch.setattr(validate, "_DESCRIBED", {})
    monkeypatch.setattr(validate, "_VALIDATED_ONCE", set())
    monkeypatch.setattr(
        keyvalidation, "_case_keys_are_local", cache(keyvalidation._case_keys_are_local.__wrapped__)
    )
    monkeypatch.setattr(keyvalidation, "_read", cache(keyvalidation._read.__wrapped__))
    keyvalidation.clear_cache()
    return shapes


@pytest.fixture
def required_keys(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield _with_shapes(monkeypatch, REQUIRED)
    keyvalidation.clear_cache()


REQUIRED_SHEETS = [
    {"id": "only-id"},
    {"id": "age", "age": 40},
    {"id": "histology", "histology": "adenocarcinoma"},
    {"id": "tumour", "histology": "adenocarcinoma", "primary_site": "colon", "primary_status": "resected"},
    {"id": "bad-site", "primary_site": "colonx", "histology": "x"},
    {"id": "no-age", "age": None, "primary_status": "resected", "primary_node_positive": True},
    {"id": "wrong-age", "age": "forty", "primary_site": "rectum"},
]


def test_a_required_key_that_is_missing_is_found_once_whichever_values_make_the_node(
    required_keys: Graph,
) -> None:
    assert keyvalidation.keys_are_local(required_keys, TABLE)
    for _run in range(2):
        found = _same_both_ways(REQUIRED_SHEETS)
        required = {i: [f.key for f in found.get(i, []) if "required" in f.message] for i in range(7)}
        assert required == {
            0: ["age"],
            1: [],
            2: ["age", "primary_site"],
            3: ["age"],
            4: ["age"],
            5: ["age", "primary_site"],
            6: [],
        }


@RANDOM
@given(_sheets(repeat=True))
def test_random_sheets_with_required_keys_have_the_same_findings_by_key(
    required_keys: Graph, sheets: list[Any]
) -> None:
    _same_both_ways(sheets)


# --- the locality check ---------------------------------------------------------------------------------


def test_the_case_shapes_decompose_by_key() -> None:
    assert keyvalidation.keys_are_local(validate.shapes_graph(), TABLE)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(  # local to the patient node, but across two keys
            "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ; sh:or ("
            " [ sh:path haip:age ; sh:minCount 1 ] [ sh:path haip:ecog ; sh:minCount 1 ] ) .",
            id="sh:or across two keys",
        ),
        pytest.param(  # shapes_are_local, but every lab key writes a haip:hasLabResult link on the patient
            "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ;"
            " sh:property [ sh:path haip:hasLabResult ; sh:maxCount 1 ; sh:message 'one lab'@en ] .",
            id="a count of links several keys write",
        ),
        pytest.param(  # each capability node is one key's, but the centre's links to them are five keys'
            "haip:S a sh:NodeShape ; sh:targetClass haip:TreatingCentre ;"
            " sh:property [ sh:path haip:hasCapability ; sh:minCount 5 ; sh:message 'all services'@en ] .",
            id="links of a node several keys share",
        ),
        pytest.param(
            "haip:S a sh:NodeShape ; sh:targetSubjectsOf haip:age ;"
            " sh:property [ sh:path haip:sex ; sh:minCount 1 ; sh:message 'sex with age'@en ] .",
            id="target by one key, judging another",
        ),
        pytest.param(
            "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ;"
            " sh:property [ sh:path dcterms:identifier ; sh:in ( 'a' 'b' ) ; sh:message 'which id'@en ] .",
            id="the id checked for its value",
        ),
        pytest.param(
            "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ;"
            " sh:property [ sh:path dcterms:identifier ; sh:datatype xsd:integer ;"
            " sh:message 'number'@en ] .",
            id="the id checked for another datatype",
        ),
    ],
)
def test_shapes_that_do_not_decompose_by_key_are_found(extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prefixes = (
        "@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix haip: <https://w3id.org/haip/> .\n"
        "@prefix dcterms: <http://purl.org/dc/terms/> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
    )
    shapes = _with_shapes(monkeypatch, prefixes + extra)
    assert not keyvalidation.keys_are_local(shapes, TABLE)
    assert keyvalidation.sheet_findings([(0, {"id": "p", "age": 40})]) is None
    keyvalidation.clear_cache()


@pytest.mark.parametrize(
    "extra",
    [
        "haip:S a sh:NodeShape ; sh:targetClass haip:Patient ;"
        " sh:property [ sh:path haip:hasPrimaryTumour ; sh:maxCount 1 ; sh:message 'one tumour'@en ] .",
        "haip:S a sh:NodeShape ; sh:targetSubjectsOf haip:age ;"
        " sh:property [ sh:path haip:age ; sh:maxInclusive 100 ; sh:message 'age'@en ] .",
    ],
    ids=["a link every key that makes the node writes alike", "target and judge by the same key"],
)
def test_shapes_that_decompose_by_key_are_kept(extra: str, monkeypatch: pytest.MonkeyPatch) -> None:
    prefixes = "@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix haip: <https://w3id.org/haip/> .\n"
    shapes = _with_shapes(monkeypatch, prefixes + extra)
    assert keyvalidation.keys_are_local(shapes, TABLE)
    _same_both_ways(
        [{"id": "p", "age": 140, "histology": "x", "primary_site": "colon"}, {"id": "q", "age": 40}]
    )
    keyvalidation.clear_cache()


def test_a_mapping_that_writes_a_checked_predicate_from_two_keys_does_not_decompose() -> None:
    ecog_as_age = replace(TABLE.keys["ecog"], prop=TABLE.keys["age"].prop)
    mapping = replace(TABLE, keys=dict(TABLE.keys, ecog=ecog_as_age))
    assert not keyvalidation.keys_are_local(validate.shapes_graph(), mapping)


def test_two_sheets_with_one_id_are_left_to_the_converted_batch() -> None:
    assert keyvalidation.sheet_findings([(0, {"id": "p", "age": 40}), (1, {"id": "p", "age": 41})]) is None


# --- the cache ------------------------------------------------------------------------------------------


def _counted_engine_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Empty the cache and count the SHACL engine's runs (the size of each run's data) from now on."""
    keyvalidation.clear_cache()
    runs: list[int] = []
    engine_results = validate._engine_results

    def counted(data: Any, engine_name: Any) -> Any:
        runs.append(len(data))
        return engine_results(data, engine_name)

    monkeypatch.setattr(validate, "_engine_results", counted)
    return runs


def test_new_values_are_validated_in_one_run_and_then_come_from_the_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs = _counted_engine_runs(monkeypatch)
    sheets = [
        {"id": "a", "age": 150, "sex": "female", "cea": {"value": 3.1, "unit": "ng/mL"}},
        {"id": "b", "age": 150, "sex": "male", "systemic_lines": [{"regimen": "FOLFOX"}]},
    ]
    first = keyvalidation.sheet_findings(list(enumerate(sheets)))
    assert len(runs) == 1
    info = keyvalidation.cache_info()
    assert info.pop("seconds") > 0
    assert info == {
        "hits": 1,
        "misses": 5,
        "size": 6 + 2,  # and the clean cea and regimen list as the shapes see them (numbers, free text)
        "bound": keyvalidation.MAX_ENTRIES,
    }
    renamed = [dict(sheet, id=sheet["id"] + "-again") for sheet in sheets]
    again = keyvalidation.sheet_findings(list(enumerate(renamed)))
    assert len(runs) == 1, "every value came from the cache"
    assert keyvalidation.cache_info()["hits"] == 1 + 6
    assert first is not None and again is not None
    assert [f.key for f in again[0]] == [f.key for f in first[0]] == ["age"]
    assert again[0][0].focus == casesheet.patient_iri("a-again")
    keyvalidation.clear_cache()


def test_a_value_alike_for_the_shapes_to_a_clean_one_is_not_validated_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Numbers on the same sides of every bound the shapes compare with, and free text, get the findings
    of a value already validated clean (none) without a new run; one on another side is validated."""
    runs = _counted_engine_runs(monkeypatch)

    def sheet(n: int, value: Any, regimen: str, months: Any) -> dict[str, Any]:
        line = {"regimen": regimen, "setting": "metastatic", "months_since_end": months}
        return {"id": f"p{n}", "cea": {"value": value, "unit": "ng/mL"}, "systemic_lines": [line]}

    # (the bounds in the shapes are 0, 5, 100 and 120: these numbers are all between 5 and 100)
    keyvalidation.sheet_findings([(0, sheet(0, 7.1, "FOLFOX", 6.5))])
    assert len(runs) == 1
    alike = [sheet(1, 47.3, "mFOLFOX6 + bevacizumab", 11.9), sheet(2, 88.0, "CAPOX", 50.5)]
    assert keyvalidation.sheet_findings(list(enumerate(alike))) == {}
    assert len(runs) == 1, "alike values came from the cache"
    other = [sheet(3, -2.0, "FOLFOX", 6.5), sheet(4, 7, "FOLFOX", 6.5)]  # below a bound; an int
    found = keyvalidation.sheet_findings(list(enumerate(other)))
    assert len(runs) == 2
    assert found == _by_description(other)
    assert [f.key for f in (found or {})[0]] == ["cea.value"]


def test_values_are_alike_only_for_shapes_that_compare_numbers_with_bounds() -> None:
    """The check reads the shapes: a constraint that reads a value otherwise (a pattern, a length, an
    equality) turns values alike off."""
    graph = validate.shapes_graph()
    try:
        keyvalidation._abstraction_sound.cache_clear()
        assert keyvalidation._abstraction_sound()
        node = URIRef("urn:test:pattern")
        graph.add((node, SH.pattern, Literal("^[0-9]+$")))
        keyvalidation._abstraction_sound.cache_clear()
        assert not keyvalidation._abstraction_sound()
    finally:
        graph.remove((node, SH.pattern, None))
        keyvalidation._abstraction_sound.cache_clear()


@pytest.mark.parametrize(
    ("key", "clean", "refused"),
    [
        ("months_since_liver_resection", 1000.5, 1e300),
        ("liver_mets_count", 1000, 2**63),
        ("months_since_liver_resection", 7.5, 1e-30),
    ],
)
def test_a_number_the_datatype_check_may_refuse_is_never_alike_to_a_clean_one(
    key: str, clean: Any, refused: Any
) -> None:
    """Numbers too big, or too fine, for the validator's datatype check are validated as themselves, even
    after a clean value on the same sides of every bound."""
    keyvalidation.clear_cache()
    first = {"id": "a", "liver_resection": "done", key: clean}
    later = {"id": "b", "liver_resection": "done", key: refused}
    assert keyvalidation.sheet_findings([(0, first)]) == _by_description([first])
    assert keyvalidation.sheet_findings([(0, later)]) == _by_description([later])
