"""Run the same rules in place on a SPARQL 1.1 store, using only the SPARQL 1.1 Protocol (queries) and
the Graph Store Protocol (loading the knowledge base, adding rule results, writing decisions back).

The patients live in a named graph of the user's store (`data_graph`). The knowledge base is put into its
own named graph and the rules' intermediate results into a work graph; every query names the dataset
explicitly with `default-graph-uri` (data + knowledge base + work), so no store-specific default-graph
setting is needed. The OWL RL step runs on the client (the store only needs SPARQL), as in embedded mode.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox
from rdflib import RDF, Graph, URIRef

from . import engine, report, validate
from .casesheet import InputError
from .evaluate import Batch, Outcome, Record, error_record
from .inputs import Case, reachable
from .namespaces import DCTERMS, HAIP

KB_GRAPH = "https://w3id.org/haip/graph/knowledge-base"
WORK_GRAPH = "https://w3id.org/haip/graph/work"


class EndpointError(Exception):
    """The store refused or failed a request; the message says which and why."""


@dataclass(frozen=True)
class Remote:
    """A SPARQL 1.1 store: its query URL and its Graph Store Protocol URL."""

    query_url: str
    store_url: str
    timeout: float = 600.0

    def _request(self, url: str, data: bytes | None, headers: dict[str, str], method: str) -> bytes:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body: bytes = response.read()
                # Virtuoso answers a query that ran out of time with partial results ("anytime query")
                # and says so only in this header: a partial answer must never become a decision.
                state = response.headers.get("X-SQL-State")
                if state:
                    message = response.headers.get("X-SQL-Message", "")
                    raise EndpointError(
                        f"{method} {url}: the store returned a partial result ({state} {message})"
                    )
                return body
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")[:500]
            raise EndpointError(f"{method} {url} failed with HTTP {error.code}: {detail}") from error
        except urllib.error.URLError as error:
            raise EndpointError(f"cannot reach {url}: {error.reason}") from error

    def query(self, query: str, graphs: list[str], accept: str) -> bytes:
        form = [("query", query)] + [("default-graph-uri", g) for g in graphs]
        body = urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept}
        return self._request(self.query_url, body, headers, "POST")

    def _graph_url(self, graph: str) -> str:
        return f"{self.store_url}?{urllib.parse.urlencode({'graph': graph})}"

    def put_graph(self, graph: str, ntriples: bytes) -> None:
        self._request(self._graph_url(graph), ntriples, {"Content-Type": "application/n-triples"}, "PUT")

    def post_graph(self, graph: str, ntriples: bytes) -> None:
        self._request(self._graph_url(graph), ntriples, {"Content-Type": "application/n-triples"}, "POST")

    def get_graph(self, graph: str) -> bytes:
        return self._request(self._graph_url(graph), None, {"Accept": "application/n-triples"}, "GET")

    def delete_graph(self, graph: str) -> None:
        try:
            self._request(self._graph_url(graph), None, {}, "DELETE")
        except EndpointError as error:
            if "HTTP 404" not in str(error):
                raise


def _term(binding: dict[str, str]) -> Any:
    kind = binding["type"]
    if kind == "uri":
        return ox.NamedNode(binding["value"])
    if kind == "bnode":
        return ox.BlankNode(binding["value"])
    if "xml:lang" in binding:
        return ox.Literal(binding["value"], language=binding["xml:lang"])
    if "datatype" in binding:
        return ox.Literal(binding["value"], datatype=ox.NamedNode(binding["datatype"]))
    return ox.Literal(binding["value"])


class RemoteBackend:
    """engine.Backend over a remote store: reads the dataset (data + knowledge base + work graphs) and
    writes rule results into the work graph."""

    def __init__(self, remote: Remote, data_graph: str) -> None:
        self.remote = remote
        self.graphs = [data_graph, KB_GRAPH, WORK_GRAPH]

    def construct(self, query: str) -> list[ox.Triple]:
        body = self.remote.query(query, self.graphs, "application/n-triples")
        return [quad.triple for quad in ox.parse(body, format=ox.RdfFormat.N_TRIPLES)]

    def select(self, query: str) -> list[dict[str, Any]]:
        body = json.loads(self.remote.query(query, self.graphs, "application/sparql-results+json"))
        variables = body["head"]["vars"]
        return [
            {v: _term(row[v]) if v in row else None for v in variables} for row in body["results"]["bindings"]
        ]

    def add(self, triples: list[ox.Triple]) -> None:
        if triples:
            self.remote.post_graph(WORK_GRAPH, ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b"")


def evaluate_in_place(
    remote: Remote, data_graph: str, result_graph: str | None = None, with_rdf: bool = False
) -> Batch:
    """Decide every patient in `data_graph` of the store, in place; optionally write the decisions (RDF)
    into `result_graph`. Patients whose data break the input contract are reported, not decided."""
    source = f"{remote.query_url} <{data_graph}>"
    data = Graph().parse(data=remote.get_graph(data_graph).decode("utf-8"), format="nt")
    patients = sorted((p for p in data.subjects(RDF.type, HAIP.Patient) if isinstance(p, URIRef)), key=str)
    cases = []
    for position, patient in enumerate(patients):
        identifier = data.value(patient, DCTERMS.identifier)
        cases.append(
            Case(source, position, str(identifier or patient), patient, tuple(reachable(data, patient)))
        )
    owner = validate.owner_index([(i, case.triples) for i, case in enumerate(cases)])
    findings = validate.findings(data, owner, {})
    remote.put_graph(KB_GRAPH, engine.knowledge_base_ntriples())
    remote.delete_graph(WORK_GRAPH)
    backend = RemoteBackend(remote, data_graph)
    engine.decide_on(backend)
    records = report.records(backend)
    warnings = report.conflicts(backend)
    decisions = report.decision_graph(backend) if (result_graph or with_rdf) else b""
    if result_graph:
        remote.put_graph(result_graph, decisions)
    remote.delete_graph(WORK_GRAPH)
    outcomes = []
    for i, case in enumerate(cases):
        violations = [f for f in findings.get(i, []) if f.severity == "violation"]
        if violations:
            record: Record = error_record(case, [InputError(f.key, f.message) for f in violations])
        else:
            record = {
                "patient": case.case_id,
                **records[str(case.patient)],
                "validation": {"conforms": True, "results": warnings.get(str(case.patient), [])},
                "source": source,
                "consensus": dict(report.SOURCE),
            }
        outcomes.append(Outcome(source, i, case.case_id, record))
    return Batch(outcomes, decisions if with_rdf else b"")
