"""Run one request's work in a forked child process, bounded in time and in memory.

The child starts as a copy of the server (the store and everything loaded are shared, copy-on-write), gets
an address-space limit (RLIMIT_AS: its current size plus the request's budget), and sends its reply back
through a pipe. The parent waits at most the time limit, then kills it. A child that runs out of memory
fails on its own (a MemoryError, or an aborted allocation in the engine) without touching the server.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection

TEXT = "text/plain; charset=utf-8"


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
    memory_bytes: int
    what: str
    """What the work is called in messages ("query", "evaluation")."""
    option: str
    """The command-line option that sets the time limit."""


_OUT_OF_MEMORY = "out of memory"


def run(work: Callable[[], Reply], budget: Budget) -> Reply:
    """The reply of `work()` run in a child process, or a 503 when it took too long or too much memory."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(work, budget.memory_bytes, send), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(budget.seconds):
            return text(
                503, f"the {budget.what} exceeded the time limit of {budget.seconds:g} s ({budget.option})"
            )
        try:
            reply = receive.recv()
        except (EOFError, OSError):
            reply = None
    finally:
        receive.close()
        child.kill()
        child.join(5)
    if isinstance(reply, Reply):
        return reply
    if reply == _OUT_OF_MEMORY or child.exitcode == -signal.SIGABRT:
        mib = budget.memory_bytes // 2**20
        return text(503, f"the {budget.what} was stopped: it needed more than its memory limit of {mib} MiB")
    return text(400, f"the {budget.what} could not be run (its process ended with code {child.exitcode})")


def _child(work: Callable[[], Reply], memory_bytes: int, send: Connection) -> None:
    # The engine prints its own message before aborting on a failed allocation: keep it out of the log.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    _limit_memory(memory_bytes)
    try:
        send.send(work())
    except MemoryError:
        send.send(_OUT_OF_MEMORY)


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
