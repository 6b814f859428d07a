"""In-place evaluation on a real SPARQL 1.1 store: the Oxigraph server (PyPI `oxigraph`) started on
loopback. Decisions must be identical to the embedded mode, and can be written back into a named graph."""

from __future__ import annotations

import json
import shutil
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import servers
from click.testing import CliRunner
from conftest import case_files
from rdflib import Graph

from haip_kg import engine, evaluate, inputs
from haip_kg.cli import main
from haip_kg.endpoint import KB_GRAPH, EndpointError, Remote, evaluate_in_place

DATA = "urn:haip:test:data"
RESULTS = "urn:haip:test:results"


@pytest.fixture(scope="module")
def oxigraph_server() -> Iterator[Remote]:
    if shutil.which("oxigraph") is None:
        pytest.fail("the oxigraph server is not installed: pip install '.[test]'")
    with servers.oxigraph() as remote:
        yield remote


def _cases() -> list[inputs.Case]:
    return [c for path in case_files() for c in inputs.read(str(path))]


def _without_source(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}


def test_in_place_decisions_equal_embedded_ones(oxigraph_server: Remote) -> None:
    cases = _cases()
    data = Graph()
    for case in cases:
        for triple in case.triples:
            data.add(triple)
    remote = oxigraph_server
    remote.put_graph(DATA, data.serialize(format="nt", encoding="utf-8"))

    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--endpoint",
            remote.query_url,
            "--store-endpoint",
            remote.store_url,
            "--data-graph",
            DATA,
            "--result-graph",
            RESULTS,
            "--batch-size",
            "9",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    in_place = {r["patient"]: _without_source(r) for r in json.loads(result.stdout)}
    embedded = {
        o.record["patient"]: _without_source(o.record) for b in evaluate.evaluate(cases) for o in b.outcomes
    }
    assert len(in_place) == len(cases)
    for key in embedded:
        for field in embedded[key]:
            assert in_place[key][field] == embedded[key][field], (key, field)

    written = Graph().parse(data=remote.get_graph(RESULTS).decode(), format="nt")
    decisions = list(written.query("SELECT ?d WHERE { ?d a <https://w3id.org/haip/PatientDecision> }"))
    assert len(decisions) == len(cases)
    embedded_graph = Graph()
    for batch in evaluate.evaluate(cases, with_rdf=True):
        embedded_graph.parse(data=batch.decisions.decode(), format="nt")
    assert len(written) > 100 * len(cases)
    assert set(written) == set(embedded_graph), "the graph written back is the embedded decision graph"
    graphs = json.loads(
        remote.query(
            "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", [], "application/sparql-results+json"
        )
    )
    left = {row["g"]["value"] for row in graphs["results"]["bindings"]}
    assert left == {DATA, RESULTS, KB_GRAPH}, "partition and work graphs are removed"


def test_unreachable_endpoint_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--endpoint",
            "http://127.0.0.1:9/query",
            "--store-endpoint",
            "http://127.0.0.1:9/store",
            "--data-graph",
            DATA,
        ],
    )
    assert result.exit_code == 2
    assert "cannot reach" in result.stderr


def test_endpoint_options_are_checked() -> None:
    assert CliRunner().invoke(main, ["evaluate", "--endpoint", "http://x/query"]).exit_code == 2
    assert CliRunner().invoke(main, ["evaluate"]).exit_code == 2


class _ShortChangingStore(BaseHTTPRequestHandler):
    """A store that sends part of a graph (one triple of two), keeps part of what is written to it (it
    always holds two triples) and cuts a query result at 1 row, saying so only in Virtuoso's
    X-SPARQL-MaxRows header."""

    def do_GET(self) -> None:  # the Graph Store Protocol GET
        body = b"<urn:a> <urn:b> <urn:c> .\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/n-triples")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:  # the Graph Store Protocol PUT: accepted, but only part of it is kept
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # SPARQL queries
        length = int(self.headers.get("Content-Length", 0))
        query = urllib.parse.parse_qs(self.rfile.read(length).decode())["query"][0]
        count = {"type": "literal", "value": "2", "datatype": "http://www.w3.org/2001/XMLSchema#integer"}
        body = json.dumps({"head": {"vars": ["n"]}, "results": {"bindings": [{"n": count}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/sparql-results+json")
        if "COUNT" not in query:
            self.send_header("X-SPARQL-MaxRows", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def short_changing_store() -> Iterator[Remote]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ShortChangingStore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield Remote(f"{base}/query", f"{base}/store", timeout=10)
    server.shutdown()


def test_a_graph_read_in_part_is_an_error_not_a_smaller_cohort(short_changing_store: Remote) -> None:
    with pytest.raises(EndpointError, match="returned 1 of the graph's 2 triples"):
        list(evaluate_in_place(short_changing_store, DATA))


def test_a_result_cut_at_the_store_limit_is_an_error(short_changing_store: Remote) -> None:
    with pytest.raises(EndpointError, match="cut the result at its limit of 1 rows"):
        short_changing_store.query("SELECT * WHERE { ?s ?p ?o }", [], "application/sparql-results+json")


def test_a_write_the_store_keeps_only_in_part_is_an_error(short_changing_store: Remote) -> None:
    three = b"<urn:a> <urn:b> <urn:c> .\n<urn:a> <urn:b> <urn:d> .\n<urn:a> <urn:b> <urn:e> .\n"
    with pytest.raises(EndpointError, match="kept 2 of the 3 triples"):
        short_changing_store.write_checked(DATA, three, 3, replace=True)


class _Forgetful(Remote):
    """The Oxigraph server, except that every CONSTRUCT answer silently loses its last triple (as a store
    that cuts a result at its row limit without saying so would)."""

    def query(self, query: str, graphs: list[str], accept: str) -> bytes:
        body = super().query(query, graphs, accept)
        if accept == "application/n-triples" and body.strip():
            body = b"\n".join(body.strip().splitlines()[:-1]) + b"\n"
        return body


def test_a_rule_answer_that_differs_from_the_client_check_is_an_error(oxigraph_server: Remote) -> None:
    cases = _cases()[:5]
    data = b"".join(engine.ntriples_of(case.triples) for case in cases)
    oxigraph_server.put_graph("urn:haip:test:forgetful", data)
    forgetful = _Forgetful(oxigraph_server.query_url, oxigraph_server.store_url)
    with pytest.raises(
        EndpointError, match=r"differs from the same rule run on the client .*missing: 1, extra: 0"
    ):
        list(evaluate_in_place(forgetful, "urn:haip:test:forgetful"))
