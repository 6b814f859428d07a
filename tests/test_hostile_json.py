"""Case-sheet JSON that would crash or swamp a parser: only the offending case is refused, with a message,
and every other case in the file is still decided (in a single-object file, a JSON Lines line, an array
item, a `{"cases": [...]}` item)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haip_kg import evaluate, inputs, jsonitems, limits

GOOD = {"id": "good-1", "primary_site": "colon"}
LATER = {"id": "good-2", "primary_site": "rectum"}
DEEP = '{"id": "deep", "x": ' + "[" * 1000 + "]" * 1000 + "}"


def records(path: Path) -> list[dict[str, Any]]:
    items = list(inputs.read_items(str(path)))
    return [o.record for b in evaluate.evaluate(items) for o in b.outcomes]


def layouts(case: str) -> dict[str, str]:
    """The same three cases (good, `case`, good) in every layout a case-sheet file can have."""
    good, later = json.dumps(GOOD), json.dumps(LATER)
    return {
        "array.json": f"[{good}, {case}, {later}]",
        "wrapper.json": f'{{"cases": [{good}, {case}, {later}], "_about": "x"}}',
        "lines.jsonl": f"{good}\n{case}\n{later}\n",
        "lines.ndjson": f"{good}\n{case}\n{later}\n",
    }


@pytest.mark.parametrize("layout", list(layouts("0")))
def test_a_deeply_nested_case_is_refused_and_the_others_decided(tmp_path: Path, layout: str) -> None:
    path = tmp_path / layout
    path.write_text(layouts(DEEP)[layout])
    first, deep, last = records(path)
    assert first["patient"] == "good-1" and "verdict" in first
    assert last["patient"] == "good-2" and "verdict" in last
    assert "errors" in deep and "over the limit of 32" in deep["errors"][0]["message"]


def test_a_deeply_nested_single_case_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text(DEEP)
    (record,) = records(tmp_path / "deep.json")
    assert "nested 1001 levels deep" in record["errors"][0]["message"]


NUMBERS = {
    "1e400": "age",
    "-1e999": "systemic_lines[0].months_since_end",
    "NaN": "cea.value",
    "Infinity": "largest_liver_met_cm",
    "-Infinity": "liver_involvement_pct",
    "1" + "0" * 5000: "ecog",
}


def _with_number(key: str, number: str) -> str:
    if key == "cea.value":
        return f'{{"id": "bad", "cea": {{"value": {number}, "unit": "ng/mL"}}}}'
    if key.startswith("systemic_lines"):
        return f'{{"id": "bad", "systemic_lines": [{{"regimen": "FOLFOX", "months_since_end": {number}}}]}}'
    return f'{{"id": "bad", "{key}": {number}}}'


@pytest.mark.parametrize("layout", list(layouts("0")))
@pytest.mark.parametrize("number", list(NUMBERS), ids=lambda n: n[:10])
def test_a_number_no_case_can_hold_refuses_only_its_case_on_its_key(
    tmp_path: Path, layout: str, number: str
) -> None:
    path = tmp_path / layout
    path.write_text(layouts(_with_number(NUMBERS[number], number))[layout])
    first, bad, last = records(path)
    assert "verdict" in first and "verdict" in last
    assert bad["patient"] == "bad"
    assert [e["key"] for e in bad["errors"]] == [NUMBERS[number]]
    assert "not a number a case sheet can hold" in bad["errors"][0]["message"]


@pytest.mark.parametrize("chunk", [100, 100_000], ids=["skipped-while-read", "read-then-refused"])
def test_a_case_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """Small chunks: the case is over the limit before it ends, so it is scanned without being kept; one
    chunk: it is whole in memory and check_json refuses it."""
    monkeypatch.setattr(jsonitems, "MAX_CASE_CHARS", 500)
    monkeypatch.setattr(jsonitems, "MAX_ITEM_BYTES", 2000)
    monkeypatch.setattr(jsonitems, "CHUNK_BYTES", chunk)
    monkeypatch.setattr(inputs, "_HEAD_BYTES", chunk)
    long_case = json.dumps({"id": "long", "trial_id": "x" * 10_000})
    path = tmp_path / "array.json"
    path.write_text(layouts(long_case)["array.json"])
    first, long, last = records(path)
    assert "verdict" in first and "verdict" in last
    assert "over the limit" in long["errors"][0]["message"]


@pytest.mark.parametrize("trial_chars", [200, 5000], ids=["read-then-refused", "skipped-while-read"])
def test_a_jsonl_line_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trial_chars: int
) -> None:
    monkeypatch.setattr(jsonitems, "MAX_CASE_CHARS", 100)
    monkeypatch.setattr(jsonitems, "MAX_ITEM_BYTES", 400)
    path = tmp_path / "lines.jsonl"
    path.write_text(layouts(json.dumps({"id": "long", "trial_id": "x" * trial_chars}))["lines.jsonl"])
    first, long, last = records(path)
    assert "verdict" in first and "verdict" in last
    assert "line 2" in long["errors"][0]["message"] and "over the limit" in long["errors"][0]["message"]


def test_the_depth_limit_is_the_shared_one() -> None:
    depth = limits.MAX_JSON_DEPTH
    ok = jsonitems.item(jsonitems.Raw(b"[" * depth + b"]" * depth, depth))
    over = jsonitems.item(jsonitems.Raw(b"[" * (depth + 1) + b"]" * (depth + 1), depth + 1))
    assert ok.error is None and over.error is not None and f"limit of {depth}" in over.error


def _split(document: bytes, size: int) -> list[Any]:
    chunks = [document[i : i + size] for i in range(0, len(document), size)]
    tail = jsonitems.Tail()
    items = [
        jsonitems.item(raw) if isinstance(raw, jsonitems.Raw) else raw
        for raw in jsonitems.split_array(chunks, tail)
    ]
    return [item.value if isinstance(item, jsonitems.Item) and item.error is None else item for item in items]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.lists(json_values, max_size=6), st.integers(1, 40), st.sampled_from(["", " ", "\n\t"]))
def test_splitting_in_any_chunks_gives_the_array_items(items: list[Any], size: int, space: str) -> None:
    """Whatever the chunk boundaries (inside a string, after a backslash, between brackets), the items
    are those json.loads finds in the whole document."""
    document = json.dumps(items, ensure_ascii=False, indent=1 if space else None).encode()
    document = space.encode() + document + space.encode()
    assert _split(document, size) == json.loads(document)


def test_a_line_that_is_not_utf8_is_refused_alone(tmp_path: Path) -> None:
    good, later = json.dumps(GOOD).encode(), json.dumps(LATER).encode()
    (tmp_path / "lines.jsonl").write_bytes(good + b'\n{"id": "\xff\xfe"}\n' + later + b"\n")
    (tmp_path / "array.json").write_bytes(b"[" + good + b', {"id": "\xff\xfe"}, ' + later + b"]")
    for name in ("lines.jsonl", "array.json"):
        first, bad, last = records(tmp_path / name)
        assert "verdict" in first and "verdict" in last
        assert "utf-8" in bad["errors"][0]["message"]


def test_text_after_the_array_and_a_cut_short_file_are_errors(tmp_path: Path) -> None:
    (tmp_path / "trailing.json").write_text(f"[{json.dumps(GOOD)}] extra")
    (tmp_path / "cut.json").write_text(f"[{json.dumps(GOOD)}, {json.dumps(LATER)[:-3]}")
    good, trailing = records(tmp_path / "trailing.json")
    assert "verdict" in good and "after its last case" in trailing["errors"][0]["message"]
    good, cut = records(tmp_path / "cut.json")
    assert "verdict" in good and "ends inside" in cut["errors"][0]["message"]


def test_a_malformed_item_does_not_stop_the_items_after_it(tmp_path: Path) -> None:
    (tmp_path / "array.json").write_text(layouts('{"id": "broken", "age": }')["array.json"])
    first, broken, last = records(tmp_path / "array.json")
    assert "verdict" in first and "verdict" in last
    assert "case 2" in broken["errors"][0]["message"] and "not valid JSON" in broken["errors"][0]["message"]


def test_an_item_over_the_limit_is_scanned_in_flat_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """An item 200 times the limit (a long string, then nested lists) is scanned without being kept:
    memory stays within a few chunks and the limit, and the item after it is still read."""
    import tracemalloc

    monkeypatch.setattr(jsonitems, "MAX_ITEM_BYTES", 10_000)
    chunk = 1_000

    def chunks() -> Iterator[bytes]:
        yield b'[{"id": "huge", "x": "'
        for number in range(1_500):  # escaped backslashes, every other chunk ending inside an escape
            yield b"y\\\\" * (chunk // 3) + b"\\" if number % 2 == 0 else b"\\" + b"y\\\\" * (chunk // 3)
        yield b'", "z": ['
        for _ in range(500):
            yield b"[1, {}]," * (chunk // 8)
        yield b'[]]}, {"id": "after"}]'

    tracemalloc.start()
    try:
        pieces = list(jsonitems.split_array(chunks(), jsonitems.Tail()))
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(pieces[0], jsonitems.Refused) and "over the limit" in pieces[0].message
    assert isinstance(pieces[1], jsonitems.Raw) and json.loads(pieces[1].text) == {"id": "after"}
    assert peak < 10 * (10_000 + chunk), f"peak {peak:,} bytes for an item of 2 MB"


@pytest.mark.parametrize(
    ("case", "key"),
    [
        ('{"id": "bad\\ud800"}', "id"),
        ('{"id": "lone", "systemic_lines": [{"regimen": "FOLFOX\\udc00", "setting": "metastatic"}]}', None),
        ('{"id": "huge", "disease_free_interval_months": ' + "9" * 400 + "}", "disease_free_interval_months"),
    ],
    ids=["surrogate-id", "surrogate-regimen", "400-digit-number"],
)
@pytest.mark.parametrize("layout", ["array.json", "lines.jsonl"])
def test_text_or_numbers_no_document_can_hold_refuse_only_their_case(
    tmp_path: Path, layout: str, case: str, key: str | None
) -> None:
    """A lone surrogate (JSON can escape one; UTF-8 cannot hold it) or an integer too big for a float
    refuses its own case, named; the run goes on (0.7.0 ended the whole run) and writes valid UTF-8."""
    path = tmp_path / layout
    path.write_text(layouts(case)[layout])
    first, bad, last = records(path)
    assert "verdict" in first and "verdict" in last
    assert "errors" in bad
    if key is not None:
        assert bad["errors"][0]["key"] == key
    json.dumps(bad, ensure_ascii=False).encode("utf-8")  # the record can be written
