"""sheet_ntriples writes a case sheet as the bytes casesheet.convert + engine.ntriples_of make of it, and
gives None exactly for the sheets that path refuses (or cannot write): on every case sheet of the corpus,
the examples and the input fixtures, on chosen awkward values, and on random JSON and CSV case sheets
(hypothesis, seeded) built from the case-sheet mapping."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, TESTS
from hypothesis import given, settings
from hypothesis import strategies as st

from haip_kg import casesheet, engine, inputs, jsonitems, resources
from haip_kg.sheet_ntriples import sheet_ntriples

TABLE = casesheet.mapping()
CODES = sorted({code for codes in TABLE.codes.values() for code in codes})
KEYS = sorted(name for name in TABLE.keys if name != "id")


class Raises:
    """The rdflib path raised (it neither converted the sheet nor reported an error)."""


def rdflib_path(sheet: Any) -> bytes | type[Raises] | None:
    """What evaluate writes today: the converter's triples as N-Triples, or None for a refused sheet."""
    try:
        conversion = casesheet.convert(sheet)
        return None if conversion.errors else engine.ntriples_of(conversion.triples)
    except (ValueError, OverflowError):
        return Raises


def assert_same(sheet: Any) -> None:
    expected = rdflib_path(sheet)
    got = sheet_ntriples(sheet)
    if expected is Raises:
        assert got is None
    else:
        assert got == expected


def assert_clean_and_same(sheet: Any) -> None:
    expected = rdflib_path(sheet)
    assert isinstance(expected, bytes), f"the rdflib path does not convert {sheet!r} cleanly"
    assert sheet_ntriples(sheet) == expected


# --- every case sheet in the repository -----------------------------------------------------------------


def _sheet_files() -> list[Path]:
    folders = [CASES, resources.examples_dir(), TESTS / "inputs"]
    return [
        Path(path)
        for path in inputs.expand([str(folder) for folder in folders])
        if Path(path).suffix in inputs.CASE_SHEET_SUFFIXES
    ]


SHEETS = [
    pytest.param(item.data, id=f"{Path(item.source).parent.name}/{Path(item.source).name}:{item.position}")
    for path in _sheet_files()
    for item in inputs.read_items(str(path))
    if isinstance(item, inputs.Sheet)
]


def test_the_repository_has_case_sheets_of_every_kind() -> None:
    """The corpus below holds case sheets that convert, from JSON and CSV (else it proves little)."""
    results = [rdflib_path(param.values[0]) for param in SHEETS]
    assert sum(isinstance(result, bytes) for result in results) >= 50
    assert any(param.id and ".csv:" in param.id for param in SHEETS)


@pytest.mark.parametrize("sheet", SHEETS)
def test_every_case_sheet_in_the_repository(sheet: Any) -> None:
    assert_same(sheet)


# --- chosen values --------------------------------------------------------------------------------------


def _key(
    shape: str, *, datatype: str | None = None, coded: bool = False, accepts_scalar: bool = False
) -> str:
    """A key of the mapping with this shape (and datatype local name, or a coded value set)."""
    return next(
        name
        for name, key in TABLE.keys.items()
        if name != "id"
        and key.shape == shape
        and (datatype is None or (key.datatype is not None and key.datatype.endswith("#" + datatype)))
        and (not coded or key.value_class is not None)
        and (not accepts_scalar or key.accepts_scalar)
    )


INTEGER = _key("scalar", datatype="integer")
DECIMAL = _key("scalar", datatype="decimal")
BOOLEAN = _key("scalar", datatype="boolean")
STRING = _key("scalar", datatype="string")
CODED = _key("scalar", coded=True)
LIST = _key("list", coded=True)
SCALAR_LIST = _key("list", accepts_scalar=True)
OBJECT = _key("object")
OBJECT_LIST = _key("object-list")
OBJECT_FIELDS = sorted(TABLE.sub_keys[OBJECT])
ITEM_FIELDS = sorted(TABLE.sub_keys[OBJECT_LIST])
A_CODE = sorted(TABLE.codes[TABLE.keys[CODED].value_class])[0]  # type: ignore[index]

AWKWARD_TEXT = [
    'say "hi"',
    "back\\slash \\n not a newline",
    "two\nlines\r\nand a carriage\rreturn",
    "tab\there, NUL\x00, bell\x07, escape\x1b, DEL\x7f",
    "unicode: é ß 中文 😀 \u2028 \u2029 \ufeff \U0010fffd",
    "<not an IRI> {x} |y| ^z^ `w`",
    "x" * 5000,
    "",
    " ",
]
CLEAN = [
    *({STRING: text} for text in AWKWARD_TEXT),
    *({CODED: text} for text in AWKWARD_TEXT),
    *({"id": text} for text in AWKWARD_TEXT if text.strip()),
    {"id": "a b/c?d#e%20f&g=h+i~j.k_l-m"},
    {"id": "é/😀"},
    {"id": "\t padded \n"},
    {CODED: A_CODE, LIST: [A_CODE, None, "not a code"]},
    *({DECIMAL: value} for value in (3, 3.0, 3.5, 1e2, 1e-7, 1e22, 1.5e300, -0.0, 0.0, -0.0, 5e-324)),
    *({DECIMAL: value} for value in (True, False, -17, 10**30, "3.00", "1e2", "")),
    *({INTEGER: value} for value in (0, -5, 10**30, 10**300, 3.0, 2.5, True, "12", "twelve")),
    *({BOOLEAN: value} for value in (True, False, 1, 0, 1.0, "true", "yes")),
    *({CODED: value} for value in (True, 1, 1.0, 1e22, 10**30, -0.0)),
    {LIST: []},
    {LIST: [None, None]},
    {SCALAR_LIST: A_CODE},
    {SCALAR_LIST: 3.5},
    {OBJECT: {}},
    {OBJECT: {"_note": "ignored", OBJECT_FIELDS[0]: None}},
    {OBJECT: dict.fromkeys(OBJECT_FIELDS, 1.25)},
    {OBJECT_LIST: []},
    {OBJECT_LIST: [{}, {}, dict.fromkeys(ITEM_FIELDS, "x")]},
    {OBJECT_LIST: [dict.fromkeys(ITEM_FIELDS, True)] * 12},
    {"_comment": [{"anything": {}}], INTEGER: None, DECIMAL: 1},
]
UNCLEAN_FIELDS: list[dict[str, Any]] = [
    {"unknown key": 1},
    {INTEGER: {}},
    {INTEGER: [1]},
    {INTEGER: jsonitems.parse("1e400")},
    {INTEGER: jsonitems.parse("NaN")},
    {DECIMAL: jsonitems.parse("-Infinity")},
    {DECIMAL: jsonitems.parse("9" * 5000)},
    {LIST: A_CODE} if LIST != SCALAR_LIST else {OBJECT_LIST: {}},
    {LIST: [[A_CODE]]},
    {LIST: [{}]},
    {OBJECT: []},
    {OBJECT: "x"},
    {OBJECT: {"unknown field": 1}},
    {OBJECT: {OBJECT_FIELDS[0]: {}}},
    {OBJECT_LIST: {}},
    {OBJECT_LIST: [None]},
    {OBJECT_LIST: [{}, "x"]},
    {OBJECT_LIST: [{"unknown field": 1}]},
]
UNCLEAN = [
    "not an object",
    [],
    {},
    {"id": ""},
    {"id": "   "},
    {"id": 7},
    {INTEGER: 70},
    *({"id": "p-1", **fields} for fields in UNCLEAN_FIELDS),
]

RAISING = [  # sheets the rdflib path raises on: sheet_ntriples gives None
    {CODED: 10**5000},
    {INTEGER: 10**5000},
]
REFUSED_NOW = [  # raised in 0.7.0 (and ended the run); refused with a message since 0.8.0
    {STRING: "lone surrogate \ud800"},
    {"id": "lone surrogate \udfff"},
]
BIG = [{DECIMAL: 10**400}, {DECIMAL: -(10**400)}]  # raised in 0.7.0; written since 0.8.0


def _short(value: Any) -> str:
    """A test id: the value's ASCII repr, cut (an integer too long to write is named by its size)."""
    if isinstance(value, dict):
        return ",".join(f"{_short(key)}={_short(item)}" for key, item in value.items())
    try:
        text = ascii(value)
    except ValueError:
        text = f"<{value.bit_length()}-bit integer>"
    return text if len(text) <= 60 else text[:57] + "..."


@pytest.mark.parametrize("fields", CLEAN, ids=_short)
def test_chosen_clean_values(fields: dict[str, Any]) -> None:
    assert_clean_and_same({"id": "p-1", **fields})


@pytest.mark.parametrize("sheet", UNCLEAN, ids=_short)
def test_chosen_unclean_sheets_give_none(sheet: Any) -> None:
    assert rdflib_path(sheet) is None
    assert sheet_ntriples(sheet) is None


@pytest.mark.parametrize("fields", RAISING, ids=_short)
def test_sheets_the_rdflib_path_cannot_write_give_none(fields: dict[str, Any]) -> None:
    sheet = {"id": "p-1", **fields}
    assert rdflib_path(sheet) is Raises
    assert sheet_ntriples(sheet) is None


@pytest.mark.parametrize("fields", REFUSED_NOW, ids=_short)
def test_text_that_is_not_unicode_is_refused_by_both(fields: dict[str, Any]) -> None:
    sheet = {"id": "p-1", **fields}
    assert rdflib_path(sheet) is None
    assert sheet_ntriples(sheet) is None


@pytest.mark.parametrize("fields", BIG, ids=_short)
def test_an_integer_too_big_for_a_float_is_written_alike(fields: dict[str, Any]) -> None:
    assert_clean_and_same({"id": "p-1", **fields})


def test_a_decimal_is_written_the_same_whatever_came_before() -> None:
    """-0.0 and 0.0 are equal floats with equal hashes: the converter's literal cache keeps them apart."""
    written = [rdflib_path({"id": "p", DECIMAL: value}) for value in (0.0, -0.0, 0.0)]
    assert isinstance(written[1], bytes) and b'"-0.0"' in written[1]
    assert written[0] == written[2] != written[1]


# --- random JSON case sheets, built from the mapping ----------------------------------------------------

NUMBER_SPELLINGS = ["3", "3.0", "3.00", "1e2", "1E2", "1e+2", "-0", "-0.0", "0.0", "0e5", "1e-7", "2.5E-3"]
number_texts = st.sampled_from(NUMBER_SPELLINGS) | st.from_regex(
    r"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?\Z"
)
bad_number_texts = st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" * 400, "9" * 5000])
texts = st.text() | st.sampled_from(AWKWARD_TEXT)
string_texts = st.builds(json.dumps, texts, ensure_ascii=st.booleans())
scalar_texts = (
    string_texts | number_texts | st.sampled_from(["true", "false"]) | st.sampled_from(CODES).map(json.dumps)
)
ids = texts.filter(str.strip).map(json.dumps) | st.sampled_from(['"p-1"', '"a b/c"'])


def _object(fields: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(sorted(fields)), unique=True).flatmap(
        lambda names: st.tuples(*(fields[name] for name in names)).map(
            lambda values: (
                "{" + ",".join(f"{json.dumps(n)}:{v}" for n, v in zip(names, values, strict=True)) + "}"
            )
        )
    )


def _list(items: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(items, max_size=4).map(lambda values: "[" + ",".join(values) + "]")


def _value(name: str) -> st.SearchStrategy[str]:
    """A JSON value the converter accepts for the key (of any type: wrong types are SHACL's to refuse)."""
    key = TABLE.keys[name]
    fields = {field: scalar_texts | st.just("null") for field in TABLE.sub_keys.get(name, {})}
    fields["_note"] = scalar_texts
    if key.shape == "list":
        listed = _list(scalar_texts | st.just("null"))
        return listed | scalar_texts if key.accepts_scalar else listed
    if key.shape == "object":
        return _object(fields)
    if key.shape == "object-list":
        return _list(_object(fields))
    return scalar_texts


def _with_id(case_id: str, fields: str) -> str:
    return '{"id":' + case_id + ("}" if fields == "{}" else "," + fields[1:])


def _sheet(values: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    return st.builds(_with_id, ids, _object(values))


clean_sheets = _sheet({name: _value(name) | st.just("null") for name in KEYS})
json_values = st.recursive(
    scalar_texts | bad_number_texts | st.just("null") | st.just('"\\ud800"'),
    lambda children: _list(children) | _object({name: children for name in [*KEYS[:3], "x", "_y"]}),
    max_leaves=6,
)
any_sheets = _sheet(
    {name: _value(name) | json_values for name in KEYS} | {"unknown": json_values, "_private": json_values}
) | st.one_of(json_values, st.just('{"id": 5}'))
SEEDED = settings(derandomize=True, deadline=None, max_examples=300)


@SEEDED
@given(clean_sheets)
def test_random_clean_json_sheets(text: str) -> None:
    assert_clean_and_same(jsonitems.parse(text))


@SEEDED
@given(any_sheets)
def test_random_json_sheets(text: str) -> None:
    assert_same(jsonitems.parse(text))


# --- random CSV rows, typed by the reader ---------------------------------------------------------------

cells = st.lists(
    st.sampled_from(
        [*NUMBER_SPELLINGS, "1e400", "nan", "yes", "No", "TRUE", "none", ";", "|", " ", '"', *CODES]
    )
    | texts,
    max_size=4,
).map("".join)


def _columns() -> list[str]:
    """The CSV columns of docs/case-sheet.md: scalar and list keys, object fields as <key>_<field>, and
    object lists in one cell."""
    columns = []
    for name, key in TABLE.keys.items():
        if key.shape == "object":
            columns += [f"{name}_{field}" for field in TABLE.sub_keys[name]]
        elif name != "id":
            columns.append(name)
    return columns


COLUMNS = _columns()
item_cells = st.lists(st.lists(cells, max_size=len(ITEM_FIELDS)).map("|".join), min_size=1, max_size=3).map(
    ";".join
)


@settings(SEEDED, max_examples=100)
@given(
    st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=12, unique=True).flatmap(
        lambda header: st.tuples(
            st.just(header),
            st.lists(
                st.tuples(*(item_cells if c == OBJECT_LIST else cells for c in header)),
                min_size=1,
                max_size=4,
            ),
        )
    )
)
def test_random_csv_rows(table: tuple[list[str], list[tuple[str, ...]]]) -> None:
    header, rows = table
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", *header])
    for number, row in enumerate(rows):
        writer.writerow([f"row {number}/é", *row])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        path.write_text(out.getvalue(), encoding="utf-8")
        items = list(inputs.read_items(str(path)))
    for item in items:
        if isinstance(item, inputs.Sheet):
            assert_same(item.data)
