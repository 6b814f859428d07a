"""Load on `haip-kg serve`: N concurrent clients (threads, one keep-alive connection each) send R SPARQL
queries each, all starting together; prints errors and latency percentiles.

    python benchmarks/serve_load.py                       # starts a server over examples/, 200 clients
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --clients 200 --requests 5

A server it starts itself gets the default limits; its port is picked free and it is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

QUERIES = [
    "ASK { <https://w3id.org/haip/S4> ?p ?o }",
    "PREFIX haip: <https://w3id.org/haip/> "
    "SELECT ?p WHERE { ?d haip:verdict haip:Consider ; haip:aboutPatient ?p }",
    "DESCRIBE <https://w3id.org/haip/S4>",
]


def start_server(cohort: str) -> tuple[subprocess.Popen[bytes], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "haip_kg", "serve", "--port", "0", "--cohort", cohort],
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    line = process.stderr.readline().decode()
    match = re.search(r"(http://[^/]+)/", line)
    if not match:
        raise SystemExit(f"the server did not start: {line}")
    threading.Thread(target=process.stderr.read, daemon=True).start()  # drain the access log
    return process, match.group(1)


def client(
    url: str,
    number: int,
    requests: int,
    start: threading.Barrier,
    latencies: list[float],
    errors: Counter[str],
) -> None:
    host = urllib.parse.urlsplit(url).netloc
    connection = http.client.HTTPConnection(host, timeout=120)
    start.wait()
    for i in range(requests):
        query = QUERIES[(number + i) % len(QUERIES)]
        began = time.perf_counter()
        try:
            connection.request("GET", "/sparql?" + urllib.parse.urlencode({"query": query}))
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors[f"HTTP {response.status}"] += 1
                continue
        except OSError as error:
            errors[type(error).__name__] += 1
            connection.close()
            continue
        latencies.append(time.perf_counter() - began)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--cohort", default=str(Path(__file__).parent.parent / "examples"))
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    args = parser.parse_args()
    process, url = (None, args.url) if args.url else start_server(args.cohort)
    try:
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        start = threading.Barrier(args.clients)
        threads = [
            threading.Thread(target=client, args=(url, n, args.requests, start, latencies, errors))
            for n in range(args.clients)
        ]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - began
    finally:
        if process:
            process.terminate()
            process.wait(30)
    total = args.clients * args.requests
    rate = total / wall
    print(f"{args.clients} clients x {args.requests} requests = {total} in {wall:.1f} s ({rate:.0f}/s)")
    print(f"errors: {sum(errors.values())} {dict(errors) if errors else ''}")
    if latencies:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        print(f"latency ms: p50 {cuts[49] * 1000:.0f}  p95 {cuts[94] * 1000:.0f}  p99 {cuts[98] * 1000:.0f}")


if __name__ == "__main__":
    main()
