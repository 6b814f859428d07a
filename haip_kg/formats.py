"""Writers for `haip-kg evaluate`: JSON (an array in input order), JSON Lines, Markdown and Turtle."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from .evaluate import Batch
from .namespaces import DCTERMS, HAIP, PREFIXES

Record = dict[str, Any]


class Output(Protocol):
    """Where a writer writes: a text stream, or the CLI's output file opened at the first write."""

    def write(self, text: str, /) -> int: ...


def write_json(batches: Iterable[Batch], out: Output) -> None:
    """An array in input order. Nothing is written before the first record, so a run that fails before
    it leaves no output; one that fails later still closes the array (valid JSON, the records so far)."""
    first = True
    try:
        for batch in batches:
            for outcome in batch.outcomes:
                out.write("[\n" if first else ",\n")
                out.write(outcome.text())
                first = False
    finally:
        if not first:
            out.write("\n]\n")
    if first:
        out.write("[]\n")


def write_jsonl(batches: Iterable[Batch], out: Output) -> None:
    for batch in batches:
        for outcome in batch.outcomes:
            out.write(outcome.text() + "\n")


_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_MARKUP = re.compile(r"([\\`*\[\]<>|#~&!]|_(?![^\W_])|(?<![^\W_])_)")
"""Characters that could start markup, HTML, an entity or a table cell; `_` only where it is not between
letters or digits (there it cannot start emphasis, so `staging_imaging` stays as it is)."""


def text(value: object) -> str:
    """Text from the input or the knowledge base, safe in Markdown and in a table cell: one line, with
    every character that could start markup, HTML, an entity or a cell escaped by a backslash."""
    return _MARKUP.sub(r"\\\1", _LINE_BREAK.sub(" ", str(value)))


def _code(value: object) -> str:
    """A code span holding `value` as it is (one line), with a fence longer than any backtick run in it."""
    one_line = _LINE_BREAK.sub(" ", str(value))
    fence = "`" * (max((len(run) for run in re.findall("`+", one_line)), default=0) + 1)
    pad = " " if one_line[:1] in ("`", " ") or one_line[-1:] in ("`", " ") or not one_line else ""
    return f"{fence}{pad}{one_line}{pad}{fence}"


def _markdown(record: Record) -> str:
    if "errors" in record:
        name = text(record["patient"]) if record["patient"] else "(no id)"
        lines = [f"## {name}: refused", "", f"Source: {_code(record['source'])}", ""]
        lines += [f"- {_code(e['key'] or '-')}: {text(e['message'])}" for e in record["errors"]]
        return _joined(lines)
    lines = [f"## {text(record['patient'])}: {text(record['verdict'])}", ""]
    if record["conditions"]:
        lines += ["Conditions: " + ", ".join(text(c) for c in record["conditions"]), ""]
    lines += ["| statement | status | met | reasons | missing |", "|---|---|---|---|---|"]
    for name, statement in record["statements"].items():
        met = statement.get("met", "")
        met_text = "" if met == "" else ("unknown" if met is None else str(met).lower())
        status = statement["status"] + (
            f" (overridden by {statement['overridden_by']})" if "overridden_by" in statement else ""
        )
        status += f" (exception: {statement['exception']})" if "exception" in statement else ""
        cells = [
            name,
            status,
            met_text,
            "; ".join(statement["reasons"]),
            ", ".join(statement.get("missing", [])),
        ]
        lines.append("| " + " | ".join(text(cell) for cell in cells) + " |")
    interpretations = sorted({i for s in record["statements"].values() for i in s.get("interpretations", [])})
    lines += ["", "Interpretations relied on: " + (", ".join(text(i) for i in interpretations) or "none")]
    if record["flags"]:
        lines.append("Flags: " + ", ".join(text(f) for f in record["flags"]))
    if record["clinical_risk_score"] is not None:
        lines.append(f"Clinical risk score: {text(record['clinical_risk_score'])}")
    for result in record["validation"]["results"]:
        lines.append(f"Warning ({text(result['key'])}): {text(result['message'])}")
    return _joined(lines)


def _joined(lines: list[str]) -> str:
    """Lines without trailing spaces (two would make a hard line break out of a value that ends in them)."""
    return "".join(line.rstrip() + "\n" for line in lines)


MARKDOWN_HEADER = (
    "# HAIP consensus decisions\n\nSource: Karanicolas et al., Curr Oncol 2014;21(1):e129-e136, "
    "doi:10.3747/co.21.1577; decision policy v1.\n\n"
)


def write_markdown(batches: Iterable[Batch], out: Output) -> None:
    """A section per case; the header is written with the first record (or at the end of an empty run),
    so a run that fails before any case is decided leaves no output."""
    first = True
    for batch in batches:
        for outcome in batch.outcomes:
            if first:
                out.write(MARKDOWN_HEADER)
                first = False
            out.write(_markdown(outcome.record) + "\n")
    if first:
        out.write(MARKDOWN_HEADER)


def write_turtle(batches: Iterable[Batch], out: Output) -> None:
    graph = Graph()
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace)
    for batch in batches:
        if batch.decisions:
            graph.parse(data=batch.decisions.decode("utf-8"), format="nt")
        for outcome in batch.outcomes:
            if outcome.refused:
                node = URIRef(f"urn:haip:refused:{quote(outcome.source)}#{outcome.position + 1}")
                graph.add((node, RDF.type, HAIP.RefusedCase))
                graph.add((node, DCTERMS.source, Literal(outcome.source)))
                if outcome.case_id:
                    graph.add((node, DCTERMS.identifier, Literal(outcome.case_id)))
                for error in outcome.record["errors"]:
                    graph.add((node, HAIP.inputError, Literal(f"{error['key'] or '-'}: {error['message']}")))
    out.write(graph.serialize(format="turtle"))


WRITERS: dict[str, Callable[[Iterable[Batch], Output], None]] = {
    "json": write_json,
    "jsonl": write_jsonl,
    "markdown": write_markdown,
    "turtle": write_turtle,
}
