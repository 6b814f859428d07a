"""`haip-kg serve`'s limits on loopback: idle connections closed, queries and evaluations bounded in time and
memory, a gate on work running at once (503 with Retry-After), an access log, a port in use."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from serving import Served, haip_kg_serve, request

HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
"""Runs for minutes, in little memory (the count streams)."""
GREEDY = "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f } ORDER BY ?a ?d ?c ?f"
"""Sorting a cross join of the knowledge base: millions of rows held in memory before the first."""


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    with haip_kg_serve(
        "--query-timeout",
        "4",
        "--query-memory",
        "128",
        "--idle-timeout",
        "1",
        "--max-queries",
        "1",
        "--queue-timeout",
        "0.5",
        "--evaluate-timeout",
        "0.3",
        "--max-connections",
        "4",
    ) as served:
        yield served


def query_url(server: Served, query: str) -> str:
    return f"{server.url}/sparql?" + urllib.parse.urlencode({"query": query})


def still_serving(server: Served) -> bool:
    status, _, body = request(query_url(server, "ASK {}"))
    return status == 200 and json.loads(body)["boolean"] is True


def closed_after(connection: socket.socket) -> float:
    """Seconds until the server closes `connection` (which sends nothing more)."""
    started = time.perf_counter()
    connection.settimeout(10)
    assert connection.recv(1024) == b""
    return time.perf_counter() - started


def connect(server: Served) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)))


def test_a_connection_that_sends_nothing_is_closed(server: Served) -> None:
    with connect(server) as silent:
        assert 0.5 < closed_after(silent) < 5


def test_a_connection_that_sends_half_a_request_head_is_closed(server: Served) -> None:
    with connect(server) as slow:
        slow.sendall(b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)
        slow.sendall(b"Accept: */*\r\n")  # more bytes, still no end of head: the clock keeps running
        assert closed_after(slow) < 5


def test_keep_alive_then_idle_close(server: Served) -> None:
    client = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    sockets = []
    for _ in range(2):  # two requests on one HTTP/1.1 connection
        client.request("GET", "/sparql?query=ASK%7B%7D")
        response = client.getresponse()
        assert response.version == 11 and response.read() == b'{"head":{},"boolean":true}'
        assert not response.will_close
        sockets.append(client.sock)
    assert sockets[0] is sockets[1] and client.sock is not None
    assert 0.5 < closed_after(client.sock) < 5
    client.close()


def test_a_query_over_its_time_is_stopped_and_answered_past_the_idle_timeout(server: Served) -> None:
    started = time.perf_counter()
    status, _, body = request(query_url(server, HEAVY))
    assert status == 503 and b"time limit of 4 s (--query-timeout)" in body
    assert 3.9 < time.perf_counter() - started < 8
    assert still_serving(server)


def test_a_query_over_its_memory_is_stopped(server: Served) -> None:
    started = time.perf_counter()
    status, _, body = request(query_url(server, GREEDY))
    assert status == 503 and b"memory limit of 128 MiB" in body
    assert time.perf_counter() - started < 3.9  # stopped by the memory limit, not the time limit
    assert still_serving(server)


def test_over_the_cap_on_running_queries_is_503_with_retry_after(server: Served) -> None:
    answers: list[int] = []
    heavy = threading.Thread(target=lambda: answers.append(request(query_url(server, HEAVY))[0]))
    heavy.start()
    time.sleep(0.5)  # the heavy query holds the one turn (--max-queries 1)
    status, headers, body = request(query_url(server, "ASK {}"))
    heavy.join()
    assert (status, headers.get("retry-after")) == (503, "1") and b"busy" in body
    assert answers == [503]
    assert still_serving(server)


def test_over_the_cap_on_connections_is_503(server: Served) -> None:
    held = [connect(server) for _ in range(4)]
    try:
        time.sleep(0.2)
        status, _, body = request(query_url(server, "ASK {}"))
        assert status == 503 and b"Service Unavailable" in body
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.2)
    assert still_serving(server)


def test_evaluate_is_bounded_in_time(server: Served) -> None:
    # every sheet new to the server's caches (its own regimen, lab values and trial), so that none of
    # them is decided from an earlier request's results
    sheets = [
        {
            "id": f"slow-{i}",
            "primary_site": "colon",
            "liver_metastases": True,
            "trial_id": f"NCT{i:08d}",
            "cea": {"value": 1 + i / 10, "unit": "ng/mL"},
            "systemic_lines": [{"regimen": f"regimen {i}", "setting": "metastatic", "progressed": True}],
        }
        for i in range(600)
    ]
    status, _, body = request(
        f"{server.url}/evaluate", json.dumps(sheets).encode(), {"Content-Type": "application/json"}
    )
    assert status == 503 and b"time limit of 0.3 s (--evaluate-timeout)" in body
    assert still_serving(server)


def test_one_access_log_line_per_request_and_no_traceback(server: Served) -> None:
    for status in (404, 405, 400):
        marker = f"/marker-{status}"
        path = {404: marker, 405: "/evaluate?" + marker, 400: "/sparql?" + marker}[status]
        assert request(server.url + path)[0] == status
    time.sleep(0.2)
    log = server.log_text()
    for status in (404, 405, 400):
        (line,) = [line for line in log.splitlines() if f"/marker-{status}" in line]
        assert line.endswith(f" {status}")
    assert "Traceback" not in log


def test_cors_is_off_by_default(server: Served) -> None:
    headers = request(query_url(server, "ASK {}"), headers={"Origin": "https://viewer.example.org"})[1]
    assert not any(name.startswith("access-control-") for name in headers)


def test_a_port_in_use_is_one_message_and_exit_2() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "haip_kg", "serve", "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
