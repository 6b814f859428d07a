"""Writers for `haip-kg evaluate`: JSON (an array in input order), JSON Lines, Markdown and Turtle."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF

from .evaluate import Batch
from .namespaces import DCTERMS, HAIP, PREFIXES

Record = dict[str, Any]


def write_json(batches: Iterable[Batch], out: IO[str]) -> None:
    out.write("[")
    first = True
    for batch in batches:
        for outcome in batch.outcomes:
            out.write("\n" if first else ",\n")
            out.write(json.dumps(outcome.record, ensure_ascii=False))
            first = False
    out.write("\n]\n" if not first else "]\n")


def write_jsonl(batches: Iterable[Batch], out: IO[str]) -> None:
    for batch in batches:
        for outcome in batch.outcomes:
            out.write(json.dumps(outcome.record, ensure_ascii=False) + "\n")


def _markdown(record: Record) -> str:
    if "errors" in record:
        lines = [f"## {record['patient'] or '(no id)'}: refused", "", f"Source: `{record['source']}`", ""]
        lines += [f"- `{e['key'] or '-'}`: {e['message']}" for e in record["errors"]]
        return "\n".join(lines) + "\n"
    lines = [f"## {record['patient']}: {record['verdict']}", ""]
    if record["conditions"]:
        lines += ["Conditions: " + ", ".join(record["conditions"]), ""]
    lines += ["| statement | status | met | reasons | missing |", "|---|---|---|---|---|"]
    for name, statement in record["statements"].items():
        met = statement.get("met", "")
        met_text = "" if met == "" else ("unknown" if met is None else str(met).lower())
        status = statement["status"] + (
            f" (overridden by {statement['overridden_by']})" if "overridden_by" in statement else ""
        )
        status += f" (exception: {statement['exception']})" if "exception" in statement else ""
        lines.append(
            f"| {name} | {status} | {met_text} | {'; '.join(statement['reasons'])} | "
            f"{', '.join(statement.get('missing', []))} |"
        )
    interpretations = sorted({i for s in record["statements"].values() for i in s.get("interpretations", [])})
    lines += ["", "Interpretations relied on: " + (", ".join(interpretations) or "none")]
    if record["flags"]:
        lines.append("Flags: " + ", ".join(record["flags"]))
    if record["clinical_risk_score"] is not None:
        lines.append(f"Clinical risk score: {record['clinical_risk_score']}")
    for result in record["validation"]["results"]:
        lines.append(f"Warning ({result['key']}): {result['message']}")
    return "\n".join(lines) + "\n"


def write_markdown(batches: Iterable[Batch], out: IO[str]) -> None:
    out.write(
        "# HAIP consensus decisions\n\nSource: Karanicolas et al., Curr Oncol 2014;21(1):e129-e136, "
        "doi:10.3747/co.21.1577; decision policy v1.\n\n"
    )
    for batch in batches:
        for outcome in batch.outcomes:
            out.write(_markdown(outcome.record) + "\n")


def write_turtle(batches: Iterable[Batch], out: IO[str]) -> None:
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


WRITERS = {"json": write_json, "jsonl": write_jsonl, "markdown": write_markdown, "turtle": write_turtle}
