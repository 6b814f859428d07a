"""The case-sheet reader under random input (hypothesis, seeded): random JSON values in every file layout,
random CSV text and random bytes. Reading and deciding never raises, every case gets exactly one record
in input order, and the exit code is the documented one (0 all decided, 1 some refused, 2 nothing
readable)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haip_kg import casesheet, evaluate, inputs
from haip_kg.cli import main

FUZZ = settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEYS = sorted(casesheet.mapping().keys)
CODES = sorted({code for codes in casesheet.mapping().codes.values() for code in codes})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats()  # NaN and infinities too: written as NaN/Infinity, which no case sheet can hold
    | st.text(max_size=12)
    | st.sampled_from(CODES)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
case_sheets = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=8)
cases = st.lists(case_sheets | json_values, min_size=1, max_size=5)


def _records(path: Path) -> list[dict[str, Any]]:
    items = list(inputs.read_items(str(path)))
    return [outcome.record for batch in evaluate.evaluate(items) for outcome in batch.outcomes]


def _exit_code(records: list[dict[str, Any]]) -> int:
    decided = [r for r in records if "errors" not in r]
    unreadable = [
        r for r in records if "errors" in r and r["patient"] is None and r["errors"][0]["key"] is None
    ]
    if not decided and len(unreadable) == len(records):
        return 2
    return 1 if len(decided) < len(records) else 0


def _expected_ids(sheets: list[Any]) -> list[str | None]:
    """The patient each record names: a case's string id (its first use; a later duplicate is refused
    but still names it)."""
    return [
        sheet["id"]
        if isinstance(sheet, dict) and isinstance(sheet.get("id"), str) and sheet["id"].strip()
        else None
        for sheet in sheets
    ]


def _layouts(sheets: list[Any]) -> dict[str, str]:
    lines = [json.dumps(sheet) for sheet in sheets]
    return {
        "array.json": json.dumps(sheets),
        "lines.jsonl": "\n".join(lines) + "\n",
        "wrapper.json": json.dumps({"cases": sheets}),
        "pretty.json": json.dumps(sheets, indent=2),
    }


@FUZZ
@given(cases, st.sampled_from(["array.json", "lines.jsonl", "wrapper.json", "pretty.json"]))
def test_random_json_cases_get_one_record_each_in_order(
    tmp_path: Path, sheets: list[Any], layout: str
) -> None:
    path = tmp_path / layout
    path.write_text(_layouts(sheets)[layout])
    records = _records(path)
    assert len(records) == len(sheets)
    for record, expected in zip(records, _expected_ids(sheets), strict=True):
        if expected is not None and "errors" not in record:
            assert record["patient"] == expected
        assert record["source"] == str(path)
        assert ("verdict" in record) != ("errors" in record)


CELL_PARTS = [
    *'abc019.,;|"\n -_',
    "yes",
    "no",
    "TRUE",
    "none",
    "nan",
    "1e400",
    "FOLFOX|metastatic|PD|yes|no|3",
]
cells = st.lists(st.sampled_from(CELL_PARTS), max_size=6).map("".join)


@FUZZ
@given(
    st.lists(
        st.sampled_from([*KEYS, "systemic_lines", "cea_value", "cea_unit", "bogus"]), min_size=1, max_size=6
    ),
    st.lists(st.lists(cells, min_size=0, max_size=7), max_size=5),
)
def test_random_csv_gets_one_record_per_row(tmp_path: Path, header: list[str], rows: list[list[str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", *header])
    for number, row in enumerate(rows):
        writer.writerow([f"row-{number}", *row])
    (tmp_path / "random.csv").write_text(out.getvalue())
    expected = list(csv.DictReader(io.StringIO(out.getvalue())))
    records = _records(tmp_path / "random.csv")
    assert len(records) == len(expected)
    for record, row in zip(records, expected, strict=True):
        assert record["patient"] == (row["id"] or None) or ("errors" in record and record["patient"] is None)


JSONISH = [*(bytes([c]) for c in b'[]{},:" \n\\1a\xff'), b'"id"', b"1e400", b"NaN", b"true", b"-"]
"""Pieces of JSON, so that random bytes often make items, strings and escapes, not just noise."""


@settings(FUZZ, max_examples=150)
@given(
    st.sampled_from([b"", b"[", b'{"cases": [', b'[{"id": "x"}, ', b"{", b"id,age\n"]),
    st.binary(max_size=200) | st.lists(st.sampled_from(JSONISH), max_size=40).map(b"".join),
    st.sampled_from([".json", ".jsonl", ".csv", ".ttl", ".nt", ".jsonld"]),
)
def test_random_bytes_never_raise_and_lose_nothing(
    tmp_path: Path, start: bytes, data: bytes, suffix: str
) -> None:
    """Random bytes, also after the start of an array, a case list or a CSV header."""
    data = start + data
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    records = _records(path)
    assert all(("verdict" in r) != ("errors" in r) and r["source"] == str(path) for r in records)
    if suffix == ".jsonl":  # every line that is not blank is a case
        lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
        assert len(records) == sum(1 for line in lines if line.strip())
    elif not records:  # only a file that holds no case at all gives no record
        assert _holds_no_case(data, suffix), data


def _holds_no_case(data: bytes, suffix: str) -> bool:
    text = data.decode("utf-8-sig")
    if suffix == ".csv":
        return not list(csv.DictReader(io.StringIO(text)))
    value = json.loads(text)
    return value == [] or value == {"cases": []}


@settings(
    derandomize=True,
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cases, st.binary(max_size=60))
def test_the_command_line_exit_code_is_the_documented_one(
    tmp_path: Path, sheets: list[Any], junk: bytes
) -> None:
    (tmp_path / "cases.json").write_text(json.dumps(sheets))
    (tmp_path / "junk.jsonl").write_bytes(junk)
    for paths in ([tmp_path / "cases.json", tmp_path / "junk.jsonl"], [tmp_path / "junk.jsonl"]):
        records = [r for path in paths for r in _records(path)]
        result = CliRunner().invoke(main, ["evaluate", "--quiet", "--workers", "1", *map(str, paths)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert json.loads(result.stdout) == json.loads(json.dumps(records))
        assert result.exit_code == _exit_code(records)
