"""SPARQL 1.1 Protocol queries: checked from the parsed query, run by Oxigraph, answered in the format the
client's `Accept` header prefers (https://www.w3.org/TR/sparql11-protocol/).

A query is parsed with rdflib's SPARQL 1.1 parser before Oxigraph sees it. What the parse shows decides:
an update is refused (403), so is a `SERVICE` anywhere in the query (sub-selects, `OPTIONAL`, `EXISTS`...:
this endpoint never makes an outbound request), and a query rdflib cannot parse is refused (400) rather
than run unchecked. All of this runs in a worker process (child.py), within the query's time and memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import mimeparse
import pyoxigraph as ox
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue

from ..namespaces import PREFIXES
from .child import Reply, store, text

SOLUTIONS: dict[str, ox.QueryResultsFormat] = {
    # In increasing order of preference (mimeparse breaks ties with the later one): JSON by default.
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
    "text/csv": ox.QueryResultsFormat.CSV,
    "application/xml": ox.QueryResultsFormat.XML,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "application/json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
}
GRAPHS: dict[str, ox.RdfFormat] = {
    # CONSTRUCT and DESCRIBE; Turtle by default.
    "application/ld+json": ox.RdfFormat.JSON_LD,
    "application/rdf+xml": ox.RdfFormat.RDF_XML,
    "text/plain": ox.RdfFormat.N_TRIPLES,
    "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/x-turtle": ox.RdfFormat.TURTLE,
    "text/turtle": ox.RdfFormat.TURTLE,
}
CHARSET = "; charset=utf-8"
GRAPH_FORMS = ("ConstructQuery", "DescribeQuery")


@dataclass(frozen=True)
class Query:
    text: str
    accept: str
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()


def negotiate(accept: str, offered: Iterable[str]) -> str | None:
    """The media type of `offered` that `accept` (an HTTP Accept header, with q-values) prefers, or None.
    A malformed header counts as none (anything is acceptable)."""
    offered = list(offered)
    try:
        return mimeparse.best_match(offered, accept or "*/*") or None
    except (ValueError, mimeparse.MimeTypeParseException):
        return offered[-1]


def _nodes(tree: Any) -> Iterator[CompValue]:
    """Every node of an rdflib SPARQL parse tree."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, CompValue):
            yield node
            stack.extend(node.values())
        elif isinstance(node, list | tuple) or hasattr(node, "as_list"):
            stack.extend(node)


def check(query: str) -> tuple[str, bool] | Reply:
    """The query's form (SelectQuery, AskQuery, ConstructQuery, DescribeQuery) and whether it names its own
    dataset (FROM / FROM NAMED), or the refusal."""
    try:
        parsed = parseQuery(query)
    except Exception as error:  # pyparsing's errors, and RecursionError on absurd nesting
        try:
            parseUpdate(query)
        except Exception:
            return text(400, f"not a valid SPARQL 1.1 query: {_first_line(error)}")
        return text(403, "this endpoint is read-only: SPARQL updates are refused")
    if any(node.name == "ServiceGraphPattern" for node in _nodes(parsed)):
        return text(403, "SERVICE is refused: this endpoint never makes requests to other services")
    form = parsed[1]
    return form.name, "datasetClause" in form


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:300]


def answer(query: Query, max_results: int) -> Reply:
    """Run in a worker (child.py): check, negotiate, run and serialize."""
    checked = check(query.text)
    if isinstance(checked, Reply):
        return checked
    form, own_dataset = checked
    offered = GRAPHS if form in GRAPH_FORMS else SOLUTIONS
    media = negotiate(query.accept, offered)
    if media is None:
        kind = "CONSTRUCT and DESCRIBE graphs" if form in GRAPH_FORMS else "SELECT and ASK results"
        return text(406, f"no acceptable format: {kind} are served as {', '.join(reversed(offered))}")
    try:
        result = store().query(query.text, **_dataset(query, own_dataset))
        if isinstance(result, ox.QueryBoolean):
            body = result.serialize(format=SOLUTIONS[media]) or b""
        elif isinstance(result, ox.QuerySolutions):
            body = _solutions(result, SOLUTIONS[media], max_results)
        else:
            body = _graph(result, GRAPHS[media], max_results)
    except _TooMany as error:
        return text(413, str(error))
    except SyntaxError as error:
        return text(400, f"not a valid SPARQL 1.1 query: {_first_line(error)}")
    except (ValueError, OSError, RuntimeError) as error:  # the engine's errors on the client's query
        return text(400, f"query failed: {_first_line(error)}")
    return Reply(200, body, media + CHARSET if media.startswith("text/") else media)


def _dataset(query: Query, own_dataset: bool) -> dict[str, Any]:
    """The protocol's dataset (default-graph-uri, named-graph-uri) replaces the query's own; with neither,
    the query's FROM / FROM NAMED; with none at all, the default graph is the union of every graph."""
    if query.default_graphs or query.named_graphs:
        return {
            "default_graph": [ox.NamedNode(iri) for iri in query.default_graphs],
            "named_graphs": [ox.NamedNode(iri) for iri in query.named_graphs],
        }
    return {} if own_dataset else {"use_default_graph_as_union": True}


class _TooMany(Exception):
    pass


def _at_most(items: Iterable[Any], limit: int, what: str) -> list[Any]:
    out = []
    for item in items:
        out.append(item)
        if len(out) > limit:
            raise _TooMany(f"more than {limit} {what}")
    return out


def _solutions(result: ox.QuerySolutions, media: ox.QueryResultsFormat, max_results: int) -> bytes:
    """The rows, counted against the limit as they come, in the SPARQL JSON results format; for another
    format, that JSON read back by Oxigraph and written out by its serializer."""
    variables = [v.value for v in result.variables]
    rows = _at_most(result, max_results, "results: add a LIMIT or narrow the query")
    bindings = [{v: _term_json(row[v]) for v in variables if row[v] is not None} for row in rows]
    body = json.dumps({"head": {"vars": variables}, "results": {"bindings": bindings}}).encode()
    if media == ox.QueryResultsFormat.JSON:
        return body
    parsed = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
    return parsed.serialize(format=media) or b""


def _term_json(term: Any) -> dict[str, Any]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Triple):
        parts = {"subject": term.subject, "predicate": term.predicate, "object": term.object}
        return {"type": "triple", "value": {k: _term_json(v) for k, v in parts.items()}}
    out = {"type": "literal", "value": term.value}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
        out["datatype"] = term.datatype.value
    return out


def _graph(result: ox.QueryTriples, media: ox.RdfFormat, max_results: int) -> bytes:
    triples = _at_most(result, max_results, "triples: narrow the query")
    prefixes = PREFIXES if media in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML) else None
    return ox.serialize(triples, format=media, prefixes=prefixes) or b""
