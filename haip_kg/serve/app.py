"""The HTTP API as an ASGI application (Starlette): routing, reading requests within their limits, and the
gate that bounds how many queries and evaluations run at once."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import anyio
import pyoxigraph as ox
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import evaluation, sparql
from .child import Budget, Reply, Workers, text
from .settings import Limits

FORM = "application/x-www-form-urlencoded"
SPARQL_QUERY = "application/sparql-query"
SPARQL_UPDATE = "application/sparql-update"
READ_ONLY = "this endpoint is read-only: SPARQL updates are refused"


class Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.body.decode())
        self.reply = reply


class Gate:
    """At most `running` pieces of work at once; the others wait for a turn, at most `wait_seconds`, and
    are then told to come back later (503 with Retry-After)."""

    def __init__(self, running: int, wait_seconds: float) -> None:
        self._slots = asyncio.Semaphore(running)
        self._wait = wait_seconds

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        try:
            if self._slots.locked():  # (a free slot is taken at once, even with no time to wait)
                await asyncio.wait_for(self._slots.acquire(), self._wait)
            else:
                await self._slots.acquire()
        except TimeoutError:
            retry = str(max(1, math.ceil(self._wait)))
            raise Refused(text(503, "the server is busy: try again later", ("Retry-After", retry))) from None
        try:
            yield
        finally:
            self._slots.release()


def _response(reply: Reply) -> Response:
    return Response(reply.body, reply.status, dict(reply.headers), media_type=reply.content_type)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body(request: Request, limits: Limits) -> bytes:
    """The body, refused (413) as soon as it is over the size limit, and (408) when it is not all sent
    within the request time limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise Refused(text(413, f"request body over {limits.max_body_bytes:,} bytes"))
    chunks, size = [], 0
    with anyio.move_on_after(limits.request_seconds) as scope:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise Refused(text(413, f"request body over {limits.max_body_bytes:,} bytes"))
            chunks.append(chunk)
    if scope.cancelled_caught:
        raise Refused(text(408, f"the request body was not sent within {limits.request_seconds:g} s"))
    return b"".join(chunks)


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(text(400, "the body is not UTF-8 text")) from None


async def _query(request: Request, limits: Limits) -> sparql.Query:
    """The query and its dataset from a GET or POST, as the SPARQL 1.1 Protocol (section 2.1) allows."""
    params = parse_qs(request.url.query)
    if request.method == "POST":
        media_type = _media_type(request)
        if media_type == SPARQL_UPDATE:
            raise Refused(text(403, READ_ONLY))
        body = await _body(request, limits)
        if media_type == SPARQL_QUERY:
            params = {**params, "query": [_decode(body)]}
        elif media_type == FORM:
            params = {**params, **parse_qs(_decode(body))}
        else:
            raise Refused(text(415, f"send the query as {SPARQL_QUERY} or {FORM}"))
    if "update" in params:
        raise Refused(text(403, READ_ONLY))
    queries = params.get("query", [])
    if len(queries) != 1:
        raise Refused(text(400, "give exactly one 'query' parameter (SPARQL 1.1 Protocol)"))
    if len(queries[0]) > limits.max_query_chars:
        raise Refused(text(413, f"query over {limits.max_query_chars:,} characters"))
    graphs = {key: tuple(params.get(key, [])) for key in ("default-graph-uri", "named-graph-uri")}
    for iri in graphs["default-graph-uri"] + graphs["named-graph-uri"]:
        try:
            ox.NamedNode(iri)
        except ValueError:
            raise Refused(text(400, f"not an absolute IRI: {iri[:200]!r}")) from None
    return sparql.Query(
        queries[0], request.headers.get("accept", ""), graphs["default-graph-uri"], graphs["named-graph-uri"]
    )


def create(workers: Workers, limits: Limits, description: str) -> Starlette:
    gate = Gate(limits.max_running, limits.queue_seconds)
    query_budget = Budget(limits.query_seconds, "query", "--query-timeout")
    evaluate_budget = Budget(limits.evaluate_seconds, "evaluation", "--evaluate-timeout")

    async def in_worker(work: Callable[..., Reply], args: tuple[Any, ...], budget: Budget) -> Reply:
        async with gate.turn():
            return await workers.run(work, args, budget)

    async def home(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": "GET, HEAD, OPTIONS"})
        return Response(description, media_type="text/plain; charset=utf-8")

    async def query(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": "GET, HEAD, POST, OPTIONS"})
        try:
            asked = await _query(request, limits)
            return _response(await in_worker(sparql.answer, (asked, limits.max_results), query_budget))
        except Refused as refused:
            return _response(refused.reply)

    async def evaluate(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"Allow": "POST, OPTIONS"})
        try:
            media_type = _media_type(request)
            body = await _body(request, limits)
            refusal = await anyio.to_thread.run_sync(evaluation.check_body, body, media_type)
            if refusal:
                return _response(refusal)
            args = (body, media_type, limits.max_cases)
            return _response(await in_worker(evaluation.answer, args, evaluate_budget))
        except Refused as refused:
            return _response(refused.reply)

    middleware = []
    if limits.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(limits.cors_origins),
                allow_methods=["GET", "HEAD", "POST", "OPTIONS"],
                allow_headers=["Accept", "Content-Type"],
            )
        )
    routes = [
        Route("/", home, methods=["GET", "OPTIONS"]),
        Route("/sparql", query, methods=["GET", "POST", "OPTIONS"]),
        Route("/evaluate", evaluate, methods=["POST", "OPTIONS"]),
    ]
    return Starlette(routes=routes, middleware=middleware)
