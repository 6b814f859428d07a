"""Run each request's work in a worker process, bounded in time and in memory (a pebble process pool).

Workers are forked from the server once everything is loaded (the store is shared, copy-on-write), each
with an address-space limit (RLIMIT_AS: its size at start plus the memory budget), and are reused. pebble
kills a worker whose task runs past its time limit and starts a new one; a worker that runs out of memory
fails on its own (a MemoryError, or an aborted allocation in the engine) without touching the server, and
every worker is replaced after `TASKS_PER_WORKER` tasks so that the memory it kept does not add up.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import socket
import stat
from collections.abc import Callable
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any

import pebble
import pyoxigraph as ox

TEXT = "text/plain; charset=utf-8"
TASKS_PER_WORKER = 200


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = TEXT
    headers: tuple[tuple[str, str], ...] = ()


def text(status: int, message: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, (message + "\n").encode(), TEXT, headers)


@dataclass(frozen=True)
class Budget:
    seconds: float
    what: str
    """What the work is called in messages ("query", "evaluation")."""
    option: str
    """The command-line option that sets the time limit."""


_store: ox.Store | None = None
"""In a worker: the server's store (inherited when the worker is forked)."""


def store() -> ox.Store:
    assert _store is not None, "store() is for worker processes"
    return _store


class Workers:
    def __init__(self, served: ox.Store, processes: int, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self._pool = pebble.ProcessPool(
            max_workers=processes,
            max_tasks=TASKS_PER_WORKER,
            initializer=_start,
            initargs=(served, memory_bytes),
            context=multiprocessing.get_context("fork"),
        )

    async def run(self, work: Callable[..., Reply], args: tuple[Any, ...], budget: Budget) -> Reply:
        """The reply of `work(*args)` in a worker, or a 503 when it took too long or too much memory."""
        future = self._pool.schedule(work, args=args, timeout=budget.seconds)
        try:
            return await asyncio.wrap_future(future)
        except TimeoutError:
            return text(
                503, f"the {budget.what} exceeded the time limit of {budget.seconds:g} s ({budget.option})"
            )
        except MemoryError:
            return self._out_of_memory(budget)
        except pebble.ProcessExpired as error:
            if error.exitcode == -signal.SIGABRT:  # the engine aborts on a failed allocation
                return self._out_of_memory(budget)
            return text(400, f"the {budget.what} could not be run (its process ended with {error.exitcode})")
        except CancelledError:
            return text(503, "the server is stopping")

    def _out_of_memory(self, budget: Budget) -> Reply:
        mib = self.memory_bytes // 2**20
        return text(503, f"the {budget.what} was stopped: it needed more than its memory limit of {mib} MiB")

    def close(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join()


def _start(served: ox.Store, memory_bytes: int) -> None:
    global _store
    _store = served
    # The engine prints its own message before aborting on a failed allocation: keep it out of the log.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    _close_network_sockets()
    _limit_memory(memory_bytes)


def _close_network_sockets() -> None:
    """A worker forked while the server has connections open inherits them (and the listening socket):
    close its copies, so that a connection the server closes is closed for the client. A worker needs no
    network socket (pebble talks to it over a Unix socket pair, which stays)."""
    try:
        descriptors = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for descriptor in descriptors:
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            inherited = socket.socket(fileno=descriptor)
        except OSError:
            continue
        if inherited.family in (socket.AF_INET, socket.AF_INET6):
            inherited.close()
        else:
            inherited.detach()


def _limit_memory(extra_bytes: int) -> None:
    """Cap this process's address space at its current size plus `extra_bytes` (Linux; elsewhere only the
    time limit applies)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[0])
    except OSError:
        return
    limit = pages * os.sysconf("SC_PAGE_SIZE") + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
