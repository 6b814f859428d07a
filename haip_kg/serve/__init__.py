"""`haip-kg serve`: a read-only SPARQL 1.1 endpoint over the knowledge base (and, optionally, a decided
cohort) and `POST /evaluate`, which takes case sheets or RDF and returns the output contract.

Endpoints:
  GET|POST /sparql   SPARQL 1.1 Protocol queries: GET ?query=..., POST application/sparql-query or a form
                     (application/x-www-form-urlencoded); default-graph-uri and named-graph-uri honoured.
                     SELECT/ASK as JSON, XML, CSV or TSV; CONSTRUCT/DESCRIBE as Turtle, N-Triples,
                     RDF/XML or JSON-LD; chosen by the Accept header (406 when none fits).
                     Updates and SERVICE are refused (403).
                     Graphs: https://w3id.org/haip/graph/knowledge-base (the knowledge base with its OWL
                     RL closure) and https://w3id.org/haip/graph/decisions (the served cohort's decisions);
                     without a dataset, a query's default graph is their union.
  POST /evaluate     case sheets as JSON (the default), JSON Lines or CSV, or RDF (Content-Type text/turtle,
                     application/n-triples, application/ld+json); 200 all decided, 422 some case refused,
                     400 nothing readable.
  GET /              this text.

Served by uvicorn (HTTP/1.1, keep-alive). Each query and evaluation runs in a worker process, killed at
its time limit and confined to its memory limit; `haip-kg serve --help` lists the limits.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import pyoxigraph as ox

from .. import engine, evaluate, inputs
from ..endpoint import KB_GRAPH
from .settings import Limits

DECISIONS_GRAPH = "https://w3id.org/haip/graph/decisions"

__all__ = ["DECISIONS_GRAPH", "KB_GRAPH", "Limits", "bind", "build_store", "run"]


def build_store(cohort: list[str]) -> ox.Store:
    """The knowledge base (with its OWL RL closure) and, if given, the decisions for a cohort, each in
    its named graph."""
    store = ox.Store()
    kb = ox.NamedNode(KB_GRAPH)
    store.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, to_graph=kb)
    if cohort:
        decisions = ox.NamedNode(DECISIONS_GRAPH)
        items = [item for path in inputs.expand(cohort) for item in inputs.read_items(path)]
        for batch in evaluate.evaluate(items, with_rdf=True):
            if batch.decisions:
                store.load(batch.decisions, format=ox.RdfFormat.N_TRIPLES, to_graph=decisions)
    return store


def bind(host: str, port: int, limits: Limits) -> socket.socket:
    """The listening socket (OSError when the address is in use or cannot be bound)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=limits.backlog)


def run(listener: socket.socket, cohort: list[str], limits: Limits, ready: Callable[[], None]) -> None:
    """Load everything, call `ready`, then serve on `listener` until interrupted."""
    from . import app, server
    from .child import Workers
    from .sparql import check

    evaluate.warm_up()
    check("ASK {}")  # builds the SPARQL parser once, before workers are forked from this process
    workers = Workers(build_store(cohort), limits.max_running, limits.memory_bytes)
    ready()
    try:
        server.serve(app.create(workers, limits, __doc__ or ""), listener, limits)
    finally:
        workers.close()
