"""`haip-kg serve`: its options, turned into the server's limits (the server itself is haip_kg.serve,
imported only when the command runs, so `--help` stays fast)."""

from __future__ import annotations

import os

import click


class _CannotListen(click.ClickException):
    exit_code = 2


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port."
)
@click.option(
    "--cohort", "cohort", multiple=True, help="Case files to evaluate and serve with the knowledge base."
)
@click.option(
    "--query-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True, help="Seconds per query."
)
@click.option(
    "--evaluate-timeout",
    type=click.FloatRange(0.1),
    default=60.0,
    show_default=True,
    help="Seconds per POST /evaluate.",
)
@click.option(
    "--query-memory",
    type=click.IntRange(16),
    default=1024,
    show_default=True,
    help="MiB a query or an evaluation may use on top of the server's own memory.",
)
@click.option(
    "--max-results", type=click.IntRange(1), default=10_000, show_default=True, help="Rows or triples."
)
@click.option(
    "--max-queries",
    type=click.IntRange(1),
    default=None,
    help="Queries and evaluations run at once; others wait their turn (default: CPUs, at least 2).",
)
@click.option(
    "--queue-timeout",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Longest wait for a turn; then 503 with Retry-After.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Open connections above which new requests get 503.",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0.1),
    default=5.0,
    show_default=True,
    help="Seconds a connection may stay open without sending a complete request head.",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0.1),
    default=30.0,
    show_default=True,
    help="Seconds to send a request body (then 408).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="Origin allowed to call the API from a browser (repeatable; `*` for any). Default: none.",
)
def serve(
    host: str,
    port: int,
    cohort: tuple[str, ...],
    query_timeout: float,
    evaluate_timeout: float,
    query_memory: int,
    max_results: int,
    max_queries: int | None,
    queue_timeout: float,
    max_connections: int,
    idle_timeout: float,
    request_timeout: float,
    cors_origins: tuple[str, ...],
) -> None:
    """Serve a read-only SPARQL 1.1 endpoint (/sparql) and POST /evaluate over HTTP."""
    from . import serve as service

    limits = service.Limits(
        query_seconds=query_timeout,
        evaluate_seconds=evaluate_timeout,
        memory_mib=query_memory,
        max_results=max_results,
        queue_seconds=queue_timeout,
        max_connections=max_connections,
        idle_seconds=idle_timeout,
        request_seconds=request_timeout,
        cors_origins=cors_origins,
        **({"max_running": max_queries} if max_queries else {}),
    )
    try:
        listener = service.bind(host, port, limits)
    except OSError as error:
        code = error.errno or 0  # the system's message, without the address create_server appends
        reason = os.strerror(code) if code > 0 else (error.strerror or str(error))
        raise _CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    bound_port = listener.getsockname()[1]

    def ready() -> None:
        click.echo(f"haip-kg serving on http://{host}:{bound_port}/ (SPARQL at /sparql)", err=True)

    service.run(listener, list(cohort), limits, ready)
