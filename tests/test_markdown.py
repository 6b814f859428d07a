"""Markdown output with any text in it (ids, regimen names in reasons, keys, messages) keeps its shape:
one heading per case, one table per decided case with five cells a row, no HTML, links or emphasis
made from the input, and every text reads back as it was given (line breaks become spaces)."""

from __future__ import annotations

import io
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from haip_kg import formats
from haip_kg.evaluate import Batch, Outcome

PARSER = MarkdownIt("commonmark").enable("table")
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
"""Any text (NUL aside: CommonMark reads it as U+FFFD) with the characters that matter made likely."""
MARKUP_TEXT = st.text(st.sampled_from(list("|`*_[]()<>#!~&;\\-+=:.\n\r \tSaz09é")), max_size=30)
TEXT = ANY_TEXT | MARKUP_TEXT
ALLOWED_INLINE = {"text", "code_inline", "softbreak"}


def words(text: str) -> str:
    return " ".join(text.split())


def decided(patient: str, reasons: list[str], missing: str, condition: str, key: str, message: str) -> Any:
    statement = {"status": "undetermined", "met": None, "reasons": reasons, "missing": [missing]}
    return {
        "patient": patient,
        "verdict": "consider",
        "conditions": [condition],
        "statements": {"S1": statement, "S2": {"status": "applies", "reasons": reasons[:1]}},
        "flags": [condition],
        "clinical_risk_score": None,
        "validation": {"conforms": True, "results": [{"key": key, "message": message}]},
    }


def refused(patient: str, source: str, key: str, message: str) -> Any:
    return {"patient": patient, "source": source, "errors": [{"key": key, "message": message}]}


def render(*records: Any) -> list[Token]:
    outcomes = [Outcome("s", i, None, record) for i, record in enumerate(records)]
    out = io.StringIO()
    formats.write_markdown([Batch(outcomes, b"")], out)
    return PARSER.parse(out.getvalue())


def inline_text(token: Token) -> str:
    return "".join(" " if c.type == "softbreak" else c.content for c in token.children or [])


@settings(derandomize=True, max_examples=200, deadline=None)
@given(TEXT, st.lists(TEXT, min_size=1, max_size=3), TEXT, TEXT, TEXT, TEXT, TEXT)
def test_any_text_keeps_the_shape_of_the_markdown(
    patient: str, reasons: list[str], missing: str, condition: str, key: str, message: str, source: str
) -> None:
    tokens = render(
        decided(patient, reasons, missing, condition, key, message), refused(patient, source, key, message)
    )
    assert not {t.type for t in tokens} & {"html_block", "html_inline", "code_block", "fence", "hr"}
    inline_types = {c.type for t in tokens for c in t.children or []}
    assert inline_types <= ALLOWED_INLINE, inline_types - ALLOWED_INLINE
    headings = [inline_text(tokens[i + 1]) for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert [words(h) for h in headings] == [
        words("HAIP consensus decisions"),
        words(f"{patient}: consider"),
        words(f"{patient or '(no id)'}: refused"),
    ]
    assert [t.type for t in tokens].count("table_open") == 1
    rows: list[list[str]] = []
    for token, after in itertools.pairwise(tokens):
        if token.type == "tr_open":
            rows.append([])
        if token.type in ("td_open", "th_open"):
            rows[-1].append(words(inline_text(after)))
    assert rows == [
        ["statement", "status", "met", "reasons", "missing"],
        ["S1", "undetermined", "unknown", words("; ".join(reasons)), words(missing)],
        ["S2", "applies", "", words(reasons[0]), ""],
    ]
    paragraphs = " ".join(words(inline_text(t)) for t in tokens if t.type == "inline")
    assert words(f"Warning ({key}): {message}") in paragraphs
    assert words(f"Source: {source}") in paragraphs or not words(source)
    list_items = [
        words(inline_text(tokens[i + 2])) for i, t in enumerate(tokens) if t.type == "list_item_open"
    ]
    assert list_items == [words(f"{key or '-'}: {message}")]
