"""In-place evaluation on Virtuoso (Debian `virtuoso-opensource`), started on loopback with a private
database (tests/servers.py, which lists the server settings it makes): decisions identical to the embedded
mode. Skipped when Virtuoso is not installed (`.ci/run` installs it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import servers
from conftest import case_files
from rdflib import Graph

from haip_kg import evaluate, inputs
from haip_kg.endpoint import Remote, evaluate_in_place


@pytest.fixture(scope="module")
def virtuoso() -> Iterator[Remote]:
    if not servers.virtuoso_installed():
        pytest.skip("Virtuoso is not installed (apt-get install virtuoso-opensource)")
    with servers.virtuoso() as remote:
        yield remote


def _without_source(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "source"}


def test_in_place_on_virtuoso_equals_embedded(virtuoso: Remote) -> None:
    cases = [c for path in case_files() for c in inputs.read(str(path))]
    data = Graph()
    for case in cases:
        for triple in case.triples:
            data.add(triple)
    remote = virtuoso
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
    embedded_graph = Graph()
    for batch in evaluate.evaluate(cases, with_rdf=True):
        embedded_graph.parse(data=batch.decisions.decode(), format="nt")
    assert set(written) == set(embedded_graph), "the graph written back is the embedded decision graph"
