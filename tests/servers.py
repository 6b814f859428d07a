"""Start the two SPARQL servers on loopback, for the endpoint tests and benchmarks/compare_modes.py: the
Oxigraph server (PyPI `oxigraph`) and a private Virtuoso (Debian `virtuoso-opensource`), each with a
database of its own in a temporary folder.

Virtuoso settings made here (an operator would make the same): SPARQL_UPDATE granted to the SPARQL user
(for the Graph Store Protocol at /sparql-graph-crud), `MaxQueryCostEstimationTime = -1` (its cost
estimator refuses the explanation rule with "estimated execution time 0 (sec) exceeds the limit"),
`MaxQueryExecutionTime = 0` (otherwise a slow query returns partial "anytime" results; the client also
refuses any answer flagged partial), and `ResultSetMaxRows` raised from its default 10,000 (the client
refuses a result flagged as cut at it).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from haip_kg.endpoint import Remote

VIRTUOSO_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(url: str) -> None:
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def oxigraph() -> Iterator[Remote]:
    binary = shutil.which("oxigraph") or "oxigraph"
    port = free_port()
    process = subprocess.Popen([binary, "serve", "--bind", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        _wait(f"http://127.0.0.1:{port}/query?query=ASK%7B%7D")
        yield Remote(f"http://127.0.0.1:{port}/query", f"http://127.0.0.1:{port}/store", timeout=7200)
    finally:
        process.terminate()
        process.wait(60)


def virtuoso_installed() -> bool:
    return bool(shutil.which("virtuoso-t") and shutil.which("isql-vt") and VIRTUOSO_INI.exists())


@contextmanager
def virtuoso() -> Iterator[Remote]:
    sql_port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="haip-virtuoso-") as folder:
        ini = VIRTUOSO_INI.read_text().replace("/var/lib/virtuoso-opensource-7/db/", f"{folder}/")
        ini = re.sub(r"(?m)^ServerPort(\s*)=\s*1111\b", rf"ServerPort\g<1>= {sql_port}", ini)
        ini = re.sub(r"(?m)^ServerPort(\s*)=\s*8890\b", rf"ServerPort\g<1>= {http_port}", ini)
        ini = re.sub(r"(?m)^MaxQueryCostEstimationTime.*$", "MaxQueryCostEstimationTime = -1", ini)
        ini = re.sub(r"(?m)^MaxQueryExecutionTime.*$", "MaxQueryExecutionTime = 0", ini)
        ini = re.sub(r"(?m)^ResultSetMaxRows.*$", "ResultSetMaxRows = 10000000", ini)
        (Path(folder) / "virtuoso.ini").write_text(ini)
        process = subprocess.Popen(
            ["virtuoso-t", "+foreground", "+configfile", str(Path(folder) / "virtuoso.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(f"http://127.0.0.1:{http_port}/sparql?query=ASK%7B%7D")
            subprocess.run(
                ["isql-vt", str(sql_port), "dba", "dba", 'exec=GRANT SPARQL_UPDATE TO "SPARQL";'],
                check=True,
                capture_output=True,
                timeout=60,
            )
            yield Remote(
                f"http://127.0.0.1:{http_port}/sparql",
                f"http://127.0.0.1:{http_port}/sparql-graph-crud",
                timeout=7200,
            )
        finally:
            process.terminate()
            process.wait(60)
