"""`haip-kg serve`: a read-only SPARQL 1.1 endpoint over the knowledge base (and, optionally, an evaluated
cohort) plus a small HTTP API, `POST /evaluate`, that takes case sheets or RDF and returns the output
contract. Standard library HTTP server; queries run in a forked child that is killed at the time limit.

Endpoints:
  GET|POST /sparql     SPARQL 1.1 Protocol queries (query=..., or a body of application/sparql-query);
                       updates are refused with 403; results are JSON (SELECT/ASK) or Turtle/N-Triples.
  POST /evaluate       body: case sheets as JSON, or RDF (Content-Type text/turtle or application/ld+json).
  GET /                a short description.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pyoxigraph as ox

from . import engine, evaluate, inputs

SPARQL_RESULTS_JSON = "application/sparql-results+json"


@dataclass(frozen=True)
class Limits:
    query_seconds: float = 10.0
    max_results: int = 10_000
    max_query_chars: int = 100_000
    max_body_bytes: int = 5_000_000
    max_cases: int = 1_000


class RequestError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def build_store(cohort: list[str]) -> ox.Store:
    """The knowledge base (with its OWL RL closure) and, if given, the decisions for a cohort."""
    store = ox.Store()
    store.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES)
    if cohort:
        items = [item for path in inputs.expand(cohort) for item in inputs.read_items(path)]
        for batch in evaluate.evaluate(items, with_rdf=True):
            if batch.decisions:
                store.load(batch.decisions, format=ox.RdfFormat.N_TRIPLES)
    return store


def _at_most(items: Iterable[Any], limit: int, what: str) -> list[Any]:
    """The items, or a 413 as soon as there are more than `limit` of them."""
    out = []
    for item in items:
        out.append(item)
        if len(out) > limit:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"more than {limit} {what}")
    return out


def _run_query(store: ox.Store, query: str, limits: Limits, connection: Any) -> None:
    """In the child process: run the query and send (status, content type, body) back."""
    try:
        result = store.query(query)
        if isinstance(result, ox.QuerySolutions):
            rows = _at_most(result, limits.max_results, "results: add a LIMIT or narrow the query")
            body = _solutions_json([v.value for v in result.variables], rows)
            connection.send((200, SPARQL_RESULTS_JSON, body))
        elif isinstance(result, ox.QueryBoolean):
            connection.send(
                (200, SPARQL_RESULTS_JSON, json.dumps({"head": {}, "boolean": bool(result)}).encode())
            )
        else:
            triples = _at_most(result, limits.max_results, "triples: narrow the query")
            out = ox.Store()
            out.extend(ox.Quad(t.subject, t.predicate, t.object) for t in triples)
            connection.send((200, "application/n-triples", engine.ntriples(out)))
    except RequestError as error:
        connection.send((int(error.status), "text/plain", error.message.encode()))
    except SyntaxError as error:
        connection.send(
            (400, "text/plain", f"not a valid SPARQL 1.1 query (updates are refused): {error}".encode())
        )
    except Exception as error:  # any engine error is the client's query, reported, never a crash
        connection.send((400, "text/plain", f"query failed: {error}".encode()))
    finally:
        connection.close()


def _term_json(term: Any) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    out = {"type": "literal", "value": term.value}
    if term.language:
        out["xml:lang"] = term.language
    elif term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
        out["datatype"] = term.datatype.value
    return out


def _solutions_json(variables: list[str], rows: list[Any]) -> bytes:
    bindings = [{v: _term_json(row[v]) for v in variables if row[v] is not None} for row in rows]
    return json.dumps({"head": {"vars": variables}, "results": {"bindings": bindings}}).encode()


def answer_query(store: ox.Store, query: str, limits: Limits) -> tuple[int, str, bytes]:
    """Run a query in a forked child; kill it at the time limit."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_run_query, args=(store, query, limits, send), daemon=True)
    child.start()
    send.close()
    if receive.poll(limits.query_seconds):
        try:
            status, content_type, body = receive.recv()
        except EOFError:
            status, content_type, body = 400, "text/plain", b"the query could not be run (its process died)"
        child.join(1)
        return status, content_type, body
    child.kill()
    child.join(1)
    return 503, "text/plain", f"query exceeded the time limit of {limits.query_seconds:g} s".encode()


def answer_evaluate(body: bytes, content_type: str, limits: Limits) -> list[dict[str, Any]]:
    suffix = {
        "text/turtle": ".ttl",
        "application/ld+json": ".jsonld",
        "application/n-triples": ".nt",
        "text/csv": ".csv",
    }.get(content_type, ".json")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"request{suffix}"
        path.write_bytes(body)
        items = list(inputs.read_items(str(path)))
        if len(items) > limits.max_cases:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{len(items)} cases; at most {limits.max_cases} per request (use the CLI for cohorts)",
            )
        records = [o.record for batch in evaluate.evaluate(items) for o in batch.outcomes]
    for record in records:
        if record.get("source", "").endswith(path.name):
            record["source"] = "request"
        for error in record.get("errors", []):
            error["message"] = error["message"].replace(str(path), "request")
    return records


def make_handler(store: ox.Store, limits: Limits) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "haip-kg"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: HTTPStatus | int, message: str) -> None:
            self._send(int(status), "text/plain; charset=utf-8", (message + "\n").encode())

        def _body(self) -> bytes:
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError as error:
                raise RequestError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from error
            if length > limits.max_body_bytes:
                raise RequestError(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body over {limits.max_body_bytes} bytes"
                )
            return self.rfile.read(length) if length > 0 else b""

        def _query_from(self, url_params: dict[str, list[str]], body: bytes, content_type: str) -> str:
            if "update" in url_params:
                raise RequestError(
                    HTTPStatus.FORBIDDEN, "this endpoint is read-only: SPARQL updates are refused"
                )
            if content_type == "application/sparql-update":
                raise RequestError(
                    HTTPStatus.FORBIDDEN, "this endpoint is read-only: SPARQL updates are refused"
                )
            if content_type == "application/sparql-query":
                return body.decode("utf-8", errors="replace")
            if content_type == "application/x-www-form-urlencoded":
                form = parse_qs(body.decode("utf-8", errors="replace"))
                if "update" in form:
                    raise RequestError(
                        HTTPStatus.FORBIDDEN, "this endpoint is read-only: SPARQL updates are refused"
                    )
                url_params = {**url_params, **form}
            queries = url_params.get("query", [])
            if len(queries) != 1:
                raise RequestError(
                    HTTPStatus.BAD_REQUEST, "give exactly one 'query' parameter (SPARQL 1.1 Protocol)"
                )
            return queries[0]

        def _handle(self, method: str) -> None:
            try:
                url = urlparse(self.path)
                params = parse_qs(url.query)
                content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                body = self._body() if method == "POST" else b""
                if url.path == "/sparql":
                    query = self._query_from(params, body, content_type)
                    if len(query) > limits.max_query_chars:
                        raise RequestError(
                            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"query over {limits.max_query_chars} characters",
                        )
                    self._send(*answer_query(store, query, limits))
                elif url.path == "/evaluate" and method == "POST":
                    records = answer_evaluate(body, content_type, limits)
                    refused = [r for r in records if "errors" in r]
                    # 200 all decided; 422 some case refused (its error record says why); 400 nothing readable
                    status = 200 if not refused else (400 if len(refused) == len(records) else 422)
                    self._send(status, "application/json", json.dumps(records).encode())
                elif url.path == "/" and method == "GET":
                    self._send(200, "text/plain; charset=utf-8", (__doc__ or "").encode())
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no {method} {url.path}; see GET /")
            except RequestError as error:
                self._error(error.status, error.message)
            except Exception as error:  # a malformed request must never crash the server
                self._error(HTTPStatus.BAD_REQUEST, f"bad request: {error}")

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "read-only endpoint")

        do_DELETE = do_PATCH = do_PUT

    return Handler


def serve(host: str, port: int, cohort: list[str], limits: Limits) -> ThreadingHTTPServer:
    evaluate.warm_up()
    server = ThreadingHTTPServer((host, port), make_handler(build_store(cohort), limits))
    server.daemon_threads = True
    return server
