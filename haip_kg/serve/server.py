"""uvicorn, set up for a network: a listen backlog, idle and request-head timeouts, a cap on connections,
an access log on stderr (one line per request), and no server-side tracebacks for client errors."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Limits

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(asctime)s %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "line"}
    },
    "loggers": {
        "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


class IdleTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol (h11) with its keep-alive timer also running from the moment a
    connection opens until a complete request head has arrived. uvicorn arms it only after a response, so
    a client that connects and sends nothing, or half a request head, would hold a connection forever.
    (uvicorn stops the timer itself when a request head is complete, and arms it again after the
    response.)"""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def data_received(self, data: bytes) -> None:
        # Unlike uvicorn's, receiving part of a request head does not stop the timer.
        self.conn.receive_data(data)
        self.handle_events()


def serve(app: Starlette, listener: socket.socket, limits: Limits) -> None:
    config = uvicorn.Config(
        app,
        http=IdleTimeoutProtocol,
        ws="none",
        lifespan="off",
        loop="asyncio",
        backlog=limits.backlog,
        timeout_keep_alive=limits.idle_seconds,  # type: ignore[arg-type]
        limit_concurrency=limits.max_connections,
        proxy_headers=False,
        server_header=False,
        log_config=LOG_CONFIG,
        access_log=True,
    )
    uvicorn.Server(config).run(sockets=[listener])
