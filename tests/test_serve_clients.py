"""Two third-party SPARQL clients against `haip-kg serve`: SPARQLWrapper and rdflib's SPARQLStore. Each
gets the result type its format promises, by GET and by POST, without a warning."""

from __future__ import annotations

import warnings
import xml.dom.minidom
from collections.abc import Iterator

import pytest
import rdflib
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from serving import PATIENTS_QUERY, Served, examples, haip_kg_serve
from SPARQLWrapper import CSV, GET, JSON, JSONLD, N3, POST, RDFXML, TSV, TURTLE, XML, SPARQLWrapper

CONSIDERED = {"https://w3id.org/haip/case/demo-001", "https://w3id.org/haip/case/demo-006"}
CONSTRUCT = (
    "PREFIX haip: <https://w3id.org/haip/> "
    "CONSTRUCT { ?d haip:aboutPatient ?p } WHERE { ?d haip:verdict haip:Consider ; haip:aboutPatient ?p }"
)
TEXT_PATIENTS = {
    CSV: b"p\r\nhttps://w3id.org/haip/case/demo-00",
    TSV: b"?p\n<https://w3id.org/haip/case/demo-00",
}


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with haip_kg_serve("--cohort", examples()) as served:
        yield served


@pytest.fixture(autouse=True)
def no_warnings() -> Iterator[None]:
    """Any warning fails the test, except rdflib's deprecation of the graph class that SPARQLWrapper 2.0
    itself builds for RDF answers (a client-side matter, not the server's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        yield


def wrapper(server: Served, query: str, return_format: str, method: str) -> SPARQLWrapper:
    client = SPARQLWrapper(f"{server.url}/sparql")
    client.setQuery(query)
    client.setReturnFormat(return_format)
    client.setMethod(method)
    return client


@pytest.mark.parametrize("method", [GET, POST])
def test_sparqlwrapper_select_and_ask(server: Served, method: str) -> None:
    rows = wrapper(server, PATIENTS_QUERY, JSON, method).queryAndConvert()
    assert isinstance(rows, dict) and {b["p"]["value"] for b in rows["results"]["bindings"]} == CONSIDERED
    document = wrapper(server, PATIENTS_QUERY, XML, method).queryAndConvert()
    assert isinstance(document, xml.dom.minidom.Document)
    uris = {node.firstChild.data for node in document.getElementsByTagName("uri")}
    assert uris == CONSIDERED
    for text_format, start in TEXT_PATIENTS.items():
        result = wrapper(server, PATIENTS_QUERY, text_format, method).query()
        assert result._get_responseFormat() == text_format
        body = result.convert()
        assert isinstance(body, bytes) and body.startswith(start) and body.count(b"demo-00") == 2
    assert wrapper(server, "ASK { <https://w3id.org/haip/S4> ?p ?o }", JSON, method).queryAndConvert() == {
        "head": {},
        "boolean": True,
    }
    ask = wrapper(server, "ASK { <urn:a> <urn:b> <urn:c> }", XML, method).queryAndConvert()
    assert ask.getElementsByTagName("boolean")[0].firstChild.data == "false"


@pytest.mark.parametrize("method", [GET, POST])
@pytest.mark.parametrize("return_format", [RDFXML, JSONLD, XML])
def test_sparqlwrapper_construct_as_a_graph(server: Served, return_format: str, method: str) -> None:
    graph = wrapper(server, CONSTRUCT, return_format, method).queryAndConvert()
    assert isinstance(graph, rdflib.Graph) and {str(o) for o in graph.objects()} == CONSIDERED


@pytest.mark.parametrize("method", [GET, POST])
@pytest.mark.parametrize("return_format", [TURTLE, N3])
def test_sparqlwrapper_construct_as_turtle(server: Served, return_format: str, method: str) -> None:
    body = wrapper(server, CONSTRUCT, return_format, method).queryAndConvert()
    assert isinstance(body, bytes)
    graph = rdflib.Graph().parse(data=body, format="turtle")
    assert {str(o) for o in graph.objects()} == CONSIDERED


@pytest.mark.parametrize("method", ["GET", "POST", "POST_FORM"])
@pytest.mark.parametrize("return_format", ["xml", "json", "csv", "tsv"])
def test_rdflib_sparqlstore(server: Served, method: str, return_format: str) -> None:
    graph = rdflib.Graph(store=SPARQLStore(f"{server.url}/sparql", method=method, returnFormat=return_format))
    rows = graph.query(PATIENTS_QUERY)
    assert rows.type == "SELECT" and {str(row.p) for row in rows} == CONSIDERED  # type: ignore[union-attr]
    assert all(isinstance(row.p, rdflib.URIRef) for row in rows)  # type: ignore[union-attr]
    if return_format in ("xml", "json"):  # CSV and TSV have no boolean answer format
        ask = graph.query("ASK { <https://w3id.org/haip/S4> ?p ?o }")
        assert ask.type == "ASK" and ask.askAnswer is True

    if return_format == "xml":  # the default; the others accept no graph format (the server says 406)
        constructed = graph.query(CONSTRUCT)
        assert constructed.type == "CONSTRUCT" and constructed.graph is not None
        assert {str(o) for o in constructed.graph.objects()} == CONSIDERED
