"""The server's limits, each set by a `haip-kg serve` option (defaults here)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    query_seconds: float = 10.0
    """--query-timeout: a query's child process is killed after this long (503)."""
    evaluate_seconds: float = 60.0
    """--evaluate-timeout: the same for a POST /evaluate."""
    memory_mib: int = 1024
    """--query-memory: memory a query's (or an evaluation's) child process may add to the server's (503)."""
    max_running: int = max(2, os.cpu_count() or 1)
    """--max-queries: queries and evaluations running at once; the others wait their turn."""
    queue_seconds: float = 10.0
    """--queue-timeout: longest wait for a turn, then 503 with Retry-After."""
    max_connections: int = 1000
    """--max-connections: open connections (and requests in flight) above which the server answers 503."""
    idle_seconds: float = 5.0
    """--idle-timeout: a connection that sends no complete request head within this time is closed (on
    connecting, and between keep-alive requests)."""
    request_seconds: float = 30.0
    """--request-timeout: longest time to send a request body (408)."""
    backlog: int = 2048
    """Connections the kernel queues before the server accepts them (capped by net.core.somaxconn)."""
    max_results: int = 10_000
    """--max-results: rows or triples in an answer (413 above)."""
    max_query_chars: int = 100_000
    max_body_bytes: int = 5_000_000
    max_cases: int = 1_000
    cors_origins: tuple[str, ...] = ()
    """--cors-origin: origins allowed to call the API from a browser (none by default)."""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * 2**20
