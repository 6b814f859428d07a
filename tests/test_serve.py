"""`haip-kg serve` on loopback: a real server process probed with valid, malformed and hostile requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from haip_kg import resources


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    examples = str(resources.examples_dir() / "cases.json")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "haip_kg",
            "serve",
            "--port",
            "0",
            "--cohort",
            examples,
            "--query-timeout",
            "2",
            "--max-results",
            "500",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    yield f"http://127.0.0.1:{match.group(1)}"
    process.terminate()
    process.wait(10)


def request(
    url: str, data: bytes | None = None, content_type: str | None = None, method: str | None = None
) -> tuple[int, str]:
    headers = {"Content-Type": content_type} if content_type else {}
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def sparql_get(base: str, query: str) -> tuple[int, str]:
    return request(f"{base}/sparql?" + urllib.parse.urlencode({"query": query}))


def test_select_over_the_served_cohort(server: str) -> None:
    status, body = sparql_get(
        server,
        "PREFIX haip: <https://w3id.org/haip/> "
        "SELECT ?p WHERE { ?d haip:verdict haip:Consider ; haip:aboutPatient ?p }",
    )
    assert status == 200
    patients = {b["p"]["value"].rsplit("/", 1)[-1] for b in json.loads(body)["results"]["bindings"]}
    assert patients == {"demo-001", "demo-006"}


def test_query_by_post_and_ask(server: str) -> None:
    status, body = request(
        f"{server}/sparql", b"ASK { <https://w3id.org/haip/S4> ?p ?o }", "application/sparql-query"
    )
    assert status == 200 and json.loads(body)["boolean"] is True


def test_updates_are_refused(server: str) -> None:
    update = "INSERT DATA { <urn:a> <urn:b> <urn:c> }"
    assert request(f"{server}/sparql", update.encode(), "application/sparql-update")[0] == 403
    form = urllib.parse.urlencode({"update": update}).encode()
    assert request(f"{server}/sparql", form, "application/x-www-form-urlencoded")[0] == 403
    assert sparql_get(server, update)[0] == 400
    assert sparql_get(server, "ASK { <urn:a> <urn:b> <urn:c> }")[1].find("false") > 0


def test_malformed_and_hostile_requests_get_4xx_or_503_and_the_server_lives(server: str) -> None:
    assert sparql_get(server, "SELEKT nonsense")[0] == 400
    assert request(f"{server}/sparql")[0] == 400  # no query
    assert request(f"{server}/sparql", b"\xff\xfe garbage", "application/octet-stream")[0] == 400
    assert sparql_get(server, "SELECT * WHERE { ?a ?b ?c }")[0] == 413  # over --max-results
    started = time.perf_counter()
    heavy = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"
    assert sparql_get(server, heavy)[0] == 503
    assert time.perf_counter() - started < 10
    huge = "SELECT * WHERE { " + "?s ?p ?o . " * 200_000 + "}"
    assert request(f"{server}/sparql", huge.encode(), "application/sparql-query")[0] == 413
    assert request(f"{server}/nowhere")[0] == 404
    assert request(f"{server}/sparql", b"x", "text/plain", method="PUT")[0] == 405
    assert sparql_get(server, "ASK {}")[0] == 200  # still serving


def test_evaluate_case_sheets_and_turtle(server: str) -> None:
    sheet = {
        "id": "web-1",
        "primary_site": "colon",
        "histology": "adenocarcinoma",
        "liver_metastases": True,
        "resectability": "unresectable",
        "resectability_assessed_by": "mdt",
        "systemic_lines": [],
    }
    status, body = request(f"{server}/evaluate", json.dumps([sheet]).encode(), "application/json")
    (record,) = json.loads(body)
    assert status == 200 and record["statements"]["S3b"]["status"] == "applies"
    turtle = resources.root() / "tests" / "inputs" / "two-patients.ttl"
    if turtle.exists():
        status, body = request(f"{server}/evaluate", turtle.read_bytes(), "text/turtle")
        assert status == 200 and len(json.loads(body)) == 2


def test_evaluate_reports_refused_cases(server: str) -> None:
    status, body = request(
        f"{server}/evaluate", b'[{"id": "ok"}, {"id": "bad", "ecog": 9}]', "application/json"
    )
    records = json.loads(body)
    assert status == 422 and "verdict" in records[0] and records[1]["errors"][0]["key"] == "ecog"
    status, body = request(f"{server}/evaluate", b"{not json", "application/json")
    assert status == 400 and "not valid JSON" in body
