"""Run the same rules in place on a SPARQL 1.1 store, using only the SPARQL 1.1 Protocol (queries) and
the Graph Store Protocol (loading the knowledge base, adding rule results, writing decisions back).

The patients live in a named graph of the user's store (`data_graph`). The knowledge base is put into its
own named graph and the rules' intermediate results into a work graph; every query names the dataset
explicitly with `default-graph-uri` (data + knowledge base + work), so no store-specific default-graph
setting is needed. The OWL RL step runs on the client (the store only needs SPARQL), as in embedded mode.
"""

from __future__ import annotations

import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pyoxigraph as ox

from . import engine, inputs, report
from .evaluate import Batch, decide_cases
from .inputs import Case, cases_in_store

KB_GRAPH = "https://w3id.org/haip/graph/knowledge-base"
WORK_GRAPH = "https://w3id.org/haip/graph/work"
PARTITION_GRAPH = "https://w3id.org/haip/graph/partition"
"""Partition n's data and rule results live in PARTITION_GRAPH/n and WORK_GRAPH/n while it is decided."""


class EndpointError(Exception):
    """The store refused or failed a request; the message says which and why."""


def _refuse_partial(response: Any, method: str, url: str) -> None:
    """Raise if the store says its answer is incomplete."""
    # Virtuoso answers a query that ran out of time with partial results ("anytime query") and says so
    # only in this header: a partial answer must never become a decision
    state = response.headers.get("X-SQL-State")
    if state:
        message = response.headers.get("X-SQL-Message", "")
        raise EndpointError(f"{method} {url}: the store returned a partial result ({state} {message})")
    # ... and an answer cut at its result-size limit (ResultSetMaxRows) in this one
    cap = response.headers.get("X-SPARQL-MaxRows")
    if cap:
        raise EndpointError(
            f"{method} {url}: the store cut the result at its limit of {cap} rows; "
            "use a smaller --batch-size or raise the store's limit"
        )


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
                _refuse_partial(response, method, url)
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

    def write_checked(self, graph: str, ntriples: bytes, holds: int, replace: bool) -> None:
        """PUT (`replace`) or POST triples, then check that the graph holds `holds` triples. A store has
        been seen to answer a large PUT with success yet keep only part of it (Virtuoso 7.2, once in a few
        runs), so a short graph is written once more, and is an error if still short."""
        for _attempt in range(2):
            (self.put_graph if replace else self.post_graph)(graph, ntriples)
            if self.count(graph) == holds:
                return
        raise EndpointError(
            f"the store kept {self.count(graph)} of the {holds} triples written to <{graph}>; "
            "nothing from this partition is reported as decided"
        )

    def count(self, graph: str) -> int:
        """How many triples a graph of the store holds."""
        # the graph is the query's dataset (default-graph-uri), not text spliced into the query
        query = "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"
        (row,) = engine.plain_rows(self.query(query, [graph], "application/sparql-results+json"))
        return int(row["n"])

    def load_graph(self, graph: str, store: ox.Store, expected: int) -> None:
        """Stream a graph of the store (GET, N-Triples) into the default graph of a local store; raise
        unless all `expected` triples arrived."""
        request = urllib.request.Request(
            self._graph_url(graph), headers={"Accept": "application/n-triples"}, method="GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                _refuse_partial(response, "GET", request.full_url)
                store.bulk_load(response, format=ox.RdfFormat.N_TRIPLES)
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", errors="replace")[:500]
            raise EndpointError(f"GET {request.full_url} failed with HTTP {error.code}: {detail}") from error
        except urllib.error.URLError as error:
            raise EndpointError(f"cannot reach {request.full_url}: {error.reason}") from error
        except SyntaxError as error:
            message = f"GET {request.full_url}: the store sent invalid N-Triples: {error}"
            raise EndpointError(message) from error
        if len(store) != expected:
            raise EndpointError(
                f"GET {request.full_url} returned {len(store)} of the graph's {expected} triples "
                "(a limit of the store's Graph Store Protocol?); nothing was decided"
            )

    def delete_graph(self, graph: str) -> None:
        try:
            self._request(self._graph_url(graph), None, {}, "DELETE")
        except EndpointError as error:
            if "HTTP 404" not in str(error):
                raise


class RemoteBackend:
    """engine.Backend over a remote store: reads the dataset (data + knowledge base + work graphs) and
    writes rule results into the work graph, keeping a local mirror of that dataset to check every rule
    answer against."""

    def __init__(
        self, remote: Remote, data_graph: str, work_graph: str = WORK_GRAPH, mirror: ox.Store | None = None
    ) -> None:
        self.remote = remote
        self.work_graph = work_graph
        self.graphs = [data_graph, KB_GRAPH, work_graph]
        self.written: set[bytes] = set()
        """The work graph's triples (N-Triples lines; rule results have no blank nodes)."""
        self.mirror = mirror if mirror is not None else ox.Store()
        """A local copy of the dataset the rules read: the data graph's triples (as given), the knowledge
        base and every rule result written to the work graph."""
        self.mirror.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)

    def construct(self, query: str) -> bytes:
        body = self.remote.query(query, self.graphs, "application/n-triples")
        # parsed and written again: what the store sent is checked, and stores' N-Triples quirks go
        triples = (quad.triple for quad in ox.parse(body, format=ox.RdfFormat.N_TRIPLES))
        answer = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""
        # Every rule's answer is checked against the same rule run on the client over the mirror (the
        # same triples): a result the store cut without saying so, or a dialect difference that changes
        # a decision, is an error instead of a wrong decision (the local run is much cheaper than the
        # store's answer over HTTP).
        got = set(answer.splitlines())
        expected = set(engine.Embedded(self.mirror).construct(query).splitlines())
        if got != expected:
            rule = next((line for line in query.splitlines() if line.startswith("#")), query[:80])
            raise EndpointError(
                f"the store's answer to the rule '{rule.lstrip('# ')}' differs from the same rule run on "
                f"the client over the same triples (triples missing: {len(expected - got)}, extra: "
                f"{len(got - expected)}): a result cut without notice or a SPARQL dialect "
                "difference; nothing from this partition is reported as decided. For example: "
                + " ".join(sorted(line.decode() for line in expected ^ got)[:2])
            )
        return answer

    def select(self, query: str) -> list[dict[str, Any]]:
        return engine.plain_rows(self.remote.query(query, self.graphs, "application/sparql-results+json"))

    def add(self, ntriples: bytes) -> None:
        if ntriples:
            self.written.update(line for line in ntriples.splitlines() if line.strip())
            self.remote.write_checked(self.work_graph, ntriples, len(self.written), replace=False)
            self.mirror.load(ntriples, format=ox.RdfFormat.N_TRIPLES, lenient=True)


PARTITION_SIZE = 250
"""Patients decided together in one partition. The stores' plans for some rules grow faster than linearly
with the patients a query sees, so a cohort is decided a partition at a time; and with at most about 35
result rows per patient for any rule, a partition of 250 stays under Virtuoso's default result-size limit
of 10,000 rows."""


def evaluate_in_place(
    remote: Remote,
    data_graph: str,
    result_graph: str | None = None,
    with_rdf: bool = False,
    partition_size: int = PARTITION_SIZE,
    workers: int = 1,
) -> Iterator[Batch]:
    """Decide every patient in `data_graph` of the store, a partition at a time (`workers` partitions
    concurrently), in order; optionally write the decisions (RDF) into `result_graph`. Patients whose data
    break the input contract are reported, not decided.

    The data graph is read once (Graph Store Protocol GET, streamed into a local Oxigraph store, on disk
    for large graphs) so that the input contract can be checked on the client. Each partition's patients
    are copied into a partition graph of the store; the rules then run in the store over that graph plus
    the knowledge-base graph and the partition's own work graph. Blank nodes of the data graph are read as
    in embedded mode (Skolem IRIs under each patient's IRI, inputs.skolemized), so the partition graphs hold
    none and the decisions equal those of the same triples decided embedded.
    """
    source = f"{remote.query_url} <{data_graph}>"
    slots = 2 * max(1, workers)
    with tempfile.TemporaryDirectory(prefix="haip-endpoint-") as folder:
        size = remote.count(data_graph)
        local = ox.Store(folder) if size * BYTES_PER_TRIPLE > inputs.ON_DISK_BYTES else ox.Store()
        remote.load_graph(data_graph, local, size)
        cases = cases_in_store(local, source)
        remote.put_graph(KB_GRAPH, engine.knowledge_base_ntriples())
        if result_graph:
            remote.delete_graph(result_graph)
        partitions = iter(lambda: list(islice(cases, partition_size)), [])
        decided = 0
        write_back = _ResultWriter(remote, result_graph).add if result_graph else None

        def counted(batch: Batch) -> Batch:
            nonlocal decided
            decided += sum(not outcome.refused for outcome in batch.outcomes)
            return batch

        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                pending: deque[Future[Batch]] = deque()
                for index, partition in enumerate(partitions):
                    slot = index % slots  # the partitions in flight never share a slot
                    pending.append(
                        pool.submit(
                            _decide_partition,
                            remote,
                            partition,
                            slot,
                            source,
                            write_back,
                            with_rdf,
                        )
                    )
                    if len(pending) >= slots:
                        yield counted(pending.popleft().result())
                while pending:
                    yield counted(pending.popleft().result())
            if result_graph:
                _check_written_back(remote, result_graph, decided)
        finally:
            for slot in range(slots):
                remote.delete_graph(f"{WORK_GRAPH}/{slot}")
                remote.delete_graph(f"{PARTITION_GRAPH}/{slot}")


class _ResultWriter:
    """Adds each partition's decisions to the result graph, one partition at a time, checked: partitions
    share no triple, so after each addition the graph must hold every triple written so far."""

    def __init__(self, remote: Remote, graph: str) -> None:
        self.remote = remote
        self.graph = graph
        self.holds = 0
        self.one_at_a_time = threading.Lock()

    def add(self, decisions: bytes) -> None:
        with self.one_at_a_time:
            self.holds += len({line for line in decisions.splitlines() if line.strip()})
            self.remote.write_checked(self.graph, decisions, self.holds, replace=False)


def _check_written_back(remote: Remote, result_graph: str, decided: int) -> None:
    query = "SELECT (COUNT(DISTINCT ?d) AS ?n) WHERE { ?d a <https://w3id.org/haip/PatientDecision> }"
    (row,) = engine.plain_rows(remote.query(query, [result_graph], "application/sparql-results+json"))
    if int(row["n"]) != decided:
        raise EndpointError(
            f"<{result_graph}> holds {row['n']} patient decisions, not the {decided} made: "
            "the decisions reported are complete, the graph written back is not"
        )


BYTES_PER_TRIPLE = 350
"""About what a triple costs in an in-memory Oxigraph store."""


def _decide_partition(
    remote: Remote,
    cases: list[Case],
    slot: int,
    source: str,
    write_back: Callable[[bytes], None] | None,
    with_rdf: bool,
) -> Batch:
    partition_graph, work_graph = f"{PARTITION_GRAPH}/{slot}", f"{WORK_GRAPH}/{slot}"
    made: list[RemoteBackend] = []

    def decide(data: bytes, validated: ox.Store) -> RemoteBackend:
        holds = len({line for line in data.splitlines() if line.strip()})
        remote.write_checked(partition_graph, data, holds, replace=True)
        remote.delete_graph(work_graph)
        backend = RemoteBackend(remote, partition_graph, work_graph, mirror=validated)
        engine.decide_on(backend)
        made.append(backend)
        return backend

    batch = decide_cases(cases, decide, False, source)
    if not made or not (with_rdf or write_back):
        return batch
    # The decision graph is read from the partition's local mirror (the same triples the store was
    # checked to hold), not with a CONSTRUCT from the store: that answer is about 185 triples a patient,
    # more than a store's result-size limit allows, and Virtuoso does not always say it cut one.
    decisions = report.decision_graph(engine.Embedded(made[0].mirror))
    if write_back:
        write_back(decisions)
    return Batch(batch.outcomes, decisions if with_rdf else b"")
