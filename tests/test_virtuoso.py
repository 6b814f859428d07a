"""In-place evaluation on Virtuoso (Debian `virtuoso-opensource`), started by the test on loopback with
a private database: decisions identical to the embedded mode. Skipped when Virtuoso is not installed
(`.ci/run` installs it).

Server settings the test makes (an operator would make the same): SPARQL_UPDATE granted to the SPARQL
user (for the Graph Store Protocol at /sparql-graph-crud), `MaxQueryCostEstimationTime = -1` (its cost
estimator refuses the explanation rule with "estimated execution time 0 (sec) exceeds the limit"),
`MaxQueryExecutionTime = 0` (otherwise a slow query returns partial "anytime" results; the client also
refuses any answer flagged partial), and `ResultSetMaxRows` raised from its default 10,000 (which silently
truncates results at cohort scale).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import case_files
from rdflib import Graph

from haip_kg import evaluate, inputs
from haip_kg.endpoint import Remote, evaluate_in_place

SYSTEM_INI = Path("/etc/virtuoso-opensource-7/virtuoso.ini")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt")
    if binary is None or isql is None or not SYSTEM_INI.exists():
        pytest.skip("Virtuoso is not installed (apt-get install virtuoso-opensource)")
    folder = tmp_path_factory.mktemp("virtuoso")
    sql_port, http_port = _free_port(), _free_port()
    ini = SYSTEM_INI.read_text()
    ini = ini.replace("/var/lib/virtuoso-opensource-7/db/", f"{folder}/")
    ini = re.sub(r"(?m)^ServerPort(\s*)=\s*1111\b", rf"ServerPort\g<1>= {sql_port}", ini)
    ini = re.sub(r"(?m)^ServerPort(\s*)=\s*8890\b", rf"ServerPort\g<1>= {http_port}", ini)
    ini = re.sub(r"(?m)^MaxQueryCostEstimationTime.*$", "MaxQueryCostEstimationTime = -1", ini)
    ini = re.sub(
        r"(?m)^MaxQueryExecutionTime.*$", "MaxQueryExecutionTime = 0", ini
    )  # no partial "anytime" answers
    ini = re.sub(r"(?m)^ResultSetMaxRows.*$", "ResultSetMaxRows = 1000000", ini)
    (folder / "virtuoso.ini").write_text(ini)
    process = subprocess.Popen(
        [binary, "+foreground", "+configfile", str(folder / "virtuoso.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{http_port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/sparql?query=ASK%7B%7D", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    subprocess.run(
        [isql, str(sql_port), "dba", "dba", 'exec=GRANT SPARQL_UPDATE TO "SPARQL";'],
        check=True,
        capture_output=True,
        timeout=60,
    )
    yield base
    process.terminate()
    process.wait(30)


def _without_source(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}


def test_in_place_on_virtuoso_equals_embedded(virtuoso: str) -> None:
    cases = [c for path in case_files() for c in inputs.read(str(path))]
    data = Graph()
    for case in cases:
        for triple in case.triples:
            data.add(triple)
    remote = Remote(f"{virtuoso}/sparql", f"{virtuoso}/sparql-graph-crud")
    remote.put_graph("urn:haip:test:data", data.serialize(format="nt", encoding="utf-8"))
    batches = list(
        evaluate_in_place(remote, "urn:haip:test:data", "urn:haip:test:results", partition_size=7, workers=2)
    )
    assert len(batches) == -(-len(cases) // 7)  # decided a partition at a time
    in_place = {o.record["patient"]: _without_source(o.record) for b in batches for o in b.outcomes}
    embedded = {
        o.record["patient"]: _without_source(o.record) for b in evaluate.evaluate(cases) for o in b.outcomes
    }
    assert len(in_place) == len(cases)
    for patient, record in embedded.items():
        assert in_place[patient] == record, json.dumps(patient)
    written = Graph().parse(data=remote.get_graph("urn:haip:test:results").decode(), format="nt")
    assert len(
        list(written.query("SELECT ?d WHERE { ?d a <https://w3id.org/haip/PatientDecision> }"))
    ) == len(cases)
