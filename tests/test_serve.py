"""`haip-kg serve` on loopback: the SPARQL 1.1 Protocol (formats by Accept, datasets, methods), refusals
(updates, SERVICE), CORS, and `POST /evaluate`'s contract."""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pyoxigraph as ox
import pytest
from serving import PATIENTS_QUERY, Served, examples, haip_kg_serve, request

from haip_kg import resources
from haip_kg.serve import DECISIONS_GRAPH, KB_GRAPH

HAIP = "https://w3id.org/haip/"
CONSIDERED = {HAIP + "case/demo-001", HAIP + "case/demo-006"}
CONSTRUCT = (
    "PREFIX haip: <https://w3id.org/haip/> "
    "CONSTRUCT { ?d haip:aboutPatient ?p } WHERE { ?d haip:verdict haip:Consider ; haip:aboutPatient ?p }"
)
ORIGIN = "https://viewer.example.org"


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with haip_kg_serve(
        "--cohort", examples(), "--query-timeout", "5", "--max-results", "500", "--cors-origin", ORIGIN
    ) as served:
        yield served


def sparql(
    server: Served, query: str, accept: str | None = None, method: str = "GET", **params: str
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept": accept} if accept else {}
    if method == "GET":
        url = f"{server.url}/sparql?" + urllib.parse.urlencode({"query": query, **params})
        return request(url, None, headers)
    form = urllib.parse.urlencode({"query": query, **params}).encode()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return request(f"{server.url}/sparql", form, headers, method)


def patients_in_json(body: bytes) -> set[str]:
    return {b["p"]["value"] for b in json.loads(body)["results"]["bindings"]}


# --- SELECT and ASK results in the four formats --------------------------------------------------------


def _from_xml(body: bytes) -> set[str]:
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    return {uri.text or "" for uri in ET.fromstring(body).iterfind(".//r:binding[@name='p']/r:uri", ns)}


def _from_csv(body: bytes) -> set[str]:
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["p"]
    return {row[0] for row in rows[1:]}


def _from_tsv(body: bytes) -> set[str]:
    lines = body.decode().splitlines()
    assert lines[0] == "?p"
    return {line.strip("<>") for line in lines[1:]}


@pytest.mark.parametrize(
    ("accept", "content_type", "read"),
    [
        (None, "application/sparql-results+json", patients_in_json),
        ("application/sparql-results+json", "application/sparql-results+json", patients_in_json),
        ("application/sparql-results+xml", "application/sparql-results+xml", _from_xml),
        ("text/csv", "text/csv; charset=utf-8", _from_csv),
        ("text/tab-separated-values", "text/tab-separated-values; charset=utf-8", _from_tsv),
        ("text/csv;q=0.5, application/sparql-results+xml", "application/sparql-results+xml", _from_xml),
        ("application/sparql-results+xml;q=0.2, text/*;q=0.9", "text/csv; charset=utf-8", _from_csv),
        ("image/png, */*;q=0.1", "application/sparql-results+json", patients_in_json),
    ],
    ids=["none", "json", "xml", "csv", "tsv", "q-xml", "q-text", "any"],
)
def test_select_results_in_the_format_accepted(server: Served, accept, content_type, read) -> None:  # type: ignore[no-untyped-def]
    for method in ("GET", "POST"):
        status, headers, body = sparql(server, PATIENTS_QUERY, accept, method)
        assert (status, headers["content-type"]) == (200, content_type), body
        assert read(body) == CONSIDERED


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/sparql-results+json", b'{"head":{},"boolean":true}'),
        ("application/sparql-results+xml", b"<boolean>true</boolean>"),
        ("text/csv", b"true"),
        ("text/tab-separated-values", b"true"),
    ],
)
def test_ask_in_each_format(server: Served, accept: str, expected: bytes) -> None:
    status, headers, body = sparql(server, "ASK { <https://w3id.org/haip/S4> ?p ?o }", accept)
    assert status == 200 and headers["content-type"].startswith(accept) and expected in body
    assert b"false" in sparql(server, "ASK { <urn:a> <urn:b> <urn:c> }", accept)[2]


# --- CONSTRUCT and DESCRIBE graphs in the four formats ------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "content_type", "rdf_format"),
    [
        (None, "text/turtle; charset=utf-8", ox.RdfFormat.TURTLE),
        ("text/turtle", "text/turtle; charset=utf-8", ox.RdfFormat.TURTLE),
        ("application/n-triples", "application/n-triples", ox.RdfFormat.N_TRIPLES),
        ("application/rdf+xml", "application/rdf+xml", ox.RdfFormat.RDF_XML),
        ("application/ld+json", "application/ld+json", ox.RdfFormat.JSON_LD),
        ("application/ld+json;q=0.4, application/rdf+xml;q=0.6", "application/rdf+xml", ox.RdfFormat.RDF_XML),
    ],
    ids=["none", "turtle", "ntriples", "rdfxml", "jsonld", "q-rdfxml"],
)
def test_construct_in_the_format_accepted(server: Served, accept, content_type, rdf_format) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = sparql(server, CONSTRUCT, accept)
    assert (status, headers["content-type"]) == (200, content_type), body
    patients = {t.object.value for t in ox.parse(body, format=rdf_format)}
    assert patients == CONSIDERED


def test_describe(server: Served) -> None:
    status, _, body = sparql(server, "DESCRIBE <https://w3id.org/haip/S4>", "application/n-triples")
    triples = list(ox.parse(body, format=ox.RdfFormat.N_TRIPLES))
    assert status == 200 and triples and {t.subject.value for t in triples} == {HAIP + "S4"}


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        (PATIENTS_QUERY, "text/turtle"),
        ("ASK {}", "application/ld+json"),
        (CONSTRUCT, "application/sparql-results+json"),
        (CONSTRUCT, "text/csv"),
        (PATIENTS_QUERY, "image/png, text/html;q=0.9"),
        (PATIENTS_QUERY, "text/csv;q=0"),
    ],
)
def test_nothing_acceptable_is_406(server: Served, query: str, accept: str) -> None:
    status, _, body = sparql(server, query, accept)
    assert status == 406 and b"served as" in body


# --- Datasets: default-graph-uri and named-graph-uri --------------------------------------------------

DECISION_EXISTS = "ASK { ?d <https://w3id.org/haip/verdict> ?v }"
STATEMENT_EXISTS = "ASK { <https://w3id.org/haip/S4> ?p ?o }"
GRAPHS = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"


def answer(server: Served, query: str, method: str = "GET", **params: str) -> bool:
    status, _, body = sparql(server, query, None, method, **params)
    assert status == 200, body
    return bool(json.loads(body)["boolean"])


def graphs(server: Served, **params: str) -> set[str]:
    status, _, body = sparql(server, GRAPHS, **params)
    assert status == 200, body
    return {b["g"]["value"] for b in json.loads(body)["results"]["bindings"]}


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_default_graph_uri_is_the_dataset(server: Served, method: str) -> None:
    assert answer(server, DECISION_EXISTS, method) and answer(server, STATEMENT_EXISTS, method)
    kb_only = {"default-graph-uri": KB_GRAPH}
    assert not answer(server, DECISION_EXISTS, method, **kb_only)
    assert answer(server, STATEMENT_EXISTS, method, **kb_only)
    decisions_only = {"default-graph-uri": DECISIONS_GRAPH}
    assert answer(server, DECISION_EXISTS, method, **decisions_only)
    assert not answer(server, STATEMENT_EXISTS, method, **decisions_only)
    assert not answer(server, DECISION_EXISTS, method, **{"default-graph-uri": "urn:no-such-graph"})


def test_named_graph_uri_limits_the_named_graphs(server: Served) -> None:
    assert graphs(server) == {KB_GRAPH, DECISIONS_GRAPH}
    assert graphs(server, **{"named-graph-uri": DECISIONS_GRAPH}) == {DECISIONS_GRAPH}
    assert graphs(server, **{"default-graph-uri": KB_GRAPH}) == set()  # the protocol's dataset replaces all


def test_protocol_dataset_replaces_from_and_from_alone_is_honoured(server: Served) -> None:
    from_kb = (
        "ASK FROM <https://w3id.org/haip/graph/knowledge-base> { ?d <https://w3id.org/haip/verdict> ?v }"
    )
    assert not answer(server, from_kb)
    assert answer(server, from_kb, **{"default-graph-uri": DECISIONS_GRAPH})


def test_a_graph_uri_must_be_an_iri(server: Served) -> None:
    assert sparql(server, "ASK {}", **{"default-graph-uri": "not an iri"})[0] == 400


# --- Methods, HEAD, OPTIONS, CORS -----------------------------------------------------------------------


def test_head_and_options(server: Served) -> None:
    status, headers, body = request(
        f"{server.url}/sparql?" + urllib.parse.urlencode({"query": "ASK {}"}), method="HEAD"
    )
    assert (status, body) == (200, b"") and headers["content-type"] == "application/sparql-results+json"
    assert int(headers["content-length"]) == len(b'{"head":{},"boolean":true}')
    assert request(server.url + "/", method="HEAD")[0] == 200
    for path, allowed in [("/sparql", "GET, HEAD, POST, OPTIONS"), ("/evaluate", "POST, OPTIONS")]:
        status, headers, _ = request(server.url + path, method="OPTIONS")
        assert status == 204 and headers["allow"] == allowed


@pytest.mark.parametrize(
    ("path", "method"), [("/sparql", "PUT"), ("/sparql", "DELETE"), ("/evaluate", "GET")]
)
def test_wrong_method_is_405(server: Served, path: str, method: str) -> None:
    status, headers, _ = request(server.url + path, b"x" if method == "PUT" else None, method=method)
    assert status == 405 and "allow" in headers


def test_post_needs_a_query_content_type(server: Served) -> None:
    status, _, _ = request(f"{server.url}/sparql", b"ASK {}", {"Content-Type": "text/plain"})
    assert status == 415
    status, _, body = request(f"{server.url}/sparql", b"ASK {}", {"Content-Type": "application/sparql-query"})
    assert status == 200 and json.loads(body)["boolean"] is True


def test_cors_for_the_configured_origin_only(server: Served) -> None:
    url = f"{server.url}/sparql?" + urllib.parse.urlencode({"query": "ASK {}"})
    headers = request(url, headers={"Origin": ORIGIN})[1]
    assert headers.get("access-control-allow-origin") == ORIGIN
    assert "access-control-allow-origin" not in request(url, headers={"Origin": "https://evil.example"})[1]
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    status, headers, _ = request(f"{server.url}/sparql", headers=preflight, method="OPTIONS")
    assert status == 200 and "POST" in headers["access-control-allow-methods"]


# --- Refusals: updates and SERVICE ------------------------------------------------------------------------


def test_updates_are_refused(server: Served) -> None:
    update = "INSERT DATA { <urn:a> <urn:b> <urn:c> }"
    sparql_update = {"Content-Type": "application/sparql-update"}
    assert request(f"{server.url}/sparql", update.encode(), sparql_update)[0] == 403
    assert sparql(server, update, method="POST")[0] == 403  # parsed: an update sent as a query
    assert sparql(server, update)[0] == 403
    form = urllib.parse.urlencode({"update": update}).encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    assert request(f"{server.url}/sparql", form, form_type)[0] == 403
    assert not answer(server, "ASK { <urn:a> <urn:b> <urn:c> }")


class Listener:
    """A loopback TCP listener that records whether anything connected to it."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.connected = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/sparql"

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.connected.set()
            connection.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    recorder = Listener()
    yield recorder
    recorder.close()


SERVICE_QUERIES = {
    "top": "SELECT * WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "silent": "SELECT * WHERE { SERVICE SILENT <{url}> { ?s ?p ?o } }",
    "lowercase": "select * where { service <{url}> { ?s ?p ?o } }",
    "sub-select": "SELECT * WHERE { { SELECT ?s WHERE { SERVICE <{url}> { ?s ?p ?o } } } }",
    "optional": "SELECT * WHERE { ?a ?b ?c OPTIONAL { SERVICE <{url}> { ?a ?p ?o } } } LIMIT 1",
    "exists": "SELECT * WHERE { ?a ?b ?c FILTER EXISTS { SERVICE <{url}> { ?a ?p ?o } } } LIMIT 1",
    "not-exists-in-bind": "SELECT * WHERE { BIND(NOT EXISTS { SERVICE <{url}> { ?a ?p ?o } } AS ?x) }",
    "union": "ASK { { ?a ?b ?c } UNION { GRAPH ?g { SERVICE <{url}> { ?a ?p ?o } } } }",
    "construct": "CONSTRUCT { ?s ?p ?o } WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "variable": "SELECT * WHERE { VALUES ?e { <{url}> } SERVICE ?e { ?s ?p ?o } }",
    "comment-split": "SELECT * WHERE { SERVICE # a comment\n <{url}> { ?s ?p ?o } }",
}


@pytest.mark.parametrize("shape", sorted(SERVICE_QUERIES))
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_service_is_refused_and_nothing_connects(
    server: Served, listener: Listener, shape: str, method: str
) -> None:
    query = SERVICE_QUERIES[shape].replace("{url}", listener.url)
    status, _, body = sparql(server, query, method=method)
    assert status == 403 and b"SERVICE is refused" in body
    assert not listener.connected.wait(0.5), "the server connected to the SERVICE address"


def test_the_word_service_elsewhere_is_not_refused(server: Served) -> None:
    query = 'SELECT ?service WHERE { BIND("SERVICE <http://127.0.0.1:1/>" AS ?service) }'
    status, _, body = sparql(server, query)
    (row,) = json.loads(body)["results"]["bindings"]
    assert status == 200 and row["service"]["value"].startswith("SERVICE")


# --- Malformed queries -----------------------------------------------------------------------------------


def test_malformed_queries_get_4xx(server: Served) -> None:
    assert sparql(server, "SELEKT nonsense")[0] == 400
    assert request(f"{server.url}/sparql")[0] == 400  # no query
    bad_utf8 = {"Content-Type": "application/sparql-query"}
    assert request(f"{server.url}/sparql", b"\xff\xfe garbage", bad_utf8)[0] == 400
    assert sparql(server, "SELECT * WHERE { ?a ?b ?c }")[0] == 413  # over --max-results
    huge = "SELECT * WHERE { " + "?s ?p ?o . " * 20_000 + "}"
    assert request(f"{server.url}/sparql", huge.encode(), bad_utf8)[0] == 413
    assert sparql(server, "SELECT * {" + "{" * 5000 + "}" * 5000 + "}")[0] == 400
    assert request(f"{server.url}/nowhere")[0] == 404
    assert answer(server, "ASK {}")  # still serving


# --- POST /evaluate ---------------------------------------------------------------------------------------

SHEET = {
    "id": "web-1",
    "primary_site": "colon",
    "histology": "adenocarcinoma",
    "liver_metastases": True,
    "resectability": "unresectable",
    "resectability_assessed_by": "mdt",
    "systemic_lines": [],
}
JSON = {"Content-Type": "application/json"}


def test_evaluate_case_sheets_and_turtle(server: Served) -> None:
    status, _, body = request(f"{server.url}/evaluate", json.dumps([SHEET]).encode(), JSON)
    (record,) = json.loads(body)
    assert status == 200 and record["statements"]["S3b"]["status"] == "applies"
    assert record["source"] == "request"
    turtle = resources.root() / "tests" / "inputs" / "two-patients.ttl"
    status, _, body = request(f"{server.url}/evaluate", turtle.read_bytes(), {"Content-Type": "text/turtle"})
    assert status == 200 and len(json.loads(body)) == 2


def test_evaluate_reports_refused_cases(server: Served) -> None:
    body = b'[{"id": "ok"}, {"id": "bad", "ecog": 9}]'
    status, _, answer_body = request(f"{server.url}/evaluate", body, JSON)
    records = json.loads(answer_body)
    assert status == 422 and "verdict" in records[0] and records[1]["errors"][0]["key"] == "ecog"
    status, _, answer_body = request(f"{server.url}/evaluate", b"{not json", JSON)
    assert status == 400 and b"not valid JSON" in answer_body


@pytest.mark.parametrize("depth", [33, 20_000, 30_000])
def test_evaluate_refuses_deep_json_before_parsing(server: Served, depth: int) -> None:
    body = ("[" * depth + "]" * depth).encode()
    status, _, answer_body = request(f"{server.url}/evaluate", body, JSON)
    assert status == 400 and f"nested {depth} levels deep".encode() in answer_body
    status, _, answer_body = request(f"{server.url}/evaluate", body, {"Content-Type": "application/ld+json"})
    assert status == 400 and b"levels deep" in answer_body


def test_evaluate_refuses_a_huge_body_before_reading_it(server: Served) -> None:
    """The declared length is enough: the 413 comes without a byte of the body sent."""
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/evaluate")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", "5000001")
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and b"over 5,000,000 bytes" in response.read()
    connection.close()
    assert "Traceback" not in server.log_text()
