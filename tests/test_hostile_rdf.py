"""Native RDF that a store or a hostile client may send (found by review of 0.7.0): each is refused with a
message or read correctly, and never ends the run for the other cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from haip_kg import evaluate, inputs, resources

CASES = Path(__file__).parent / "cases"
GOOD = CASES / "r-blank-node-course.ttl"
PREFIXES = "@prefix haip: <https://w3id.org/haip/> . @prefix dcterms: <http://purl.org/dc/terms/> .\n"


def _records(*paths: Path) -> list[dict[str, Any]]:
    items = [item for path in paths for item in inputs.read_items(str(path))]
    return [outcome.record for batch in evaluate.evaluate(items) for outcome in batch.outcomes]


def _good() -> dict[str, Any]:
    (record,) = _records(GOOD)
    assert "verdict" in record
    return record


def test_a_triple_term_refuses_its_case_only(tmp_path: Path) -> None:
    path = tmp_path / "terms.ttl"
    path.write_text(
        PREFIXES
        + '<urn:p:1> a haip:Patient ; dcterms:identifier "t1" ;\n'
        + "  <urn:x:note> <<( <urn:a> <urn:b> <urn:c> )>> .\n"
        "<urn:p:2> a haip:Patient ; dcterms:identifier <<( <urn:a> <urn:b> <urn:c> )>> .\n"
        '<urn:p:3> a haip:Patient ; dcterms:identifier "fine" .\n'
    )
    records = {r["patient"]: r for r in _records(path, GOOD)}
    assert set(records) == {"t1", "urn:p:2", "fine", "r-blank-node-course"}
    for refused in ("t1", "urn:p:2"):
        assert "triple term" in records[refused]["errors"][0]["message"]
    assert "verdict" in records["fine"] and "verdict" in records["r-blank-node-course"]


def test_a_deep_json_ld_file_is_refused_before_parsing(tmp_path: Path) -> None:
    depth = 4000
    path = tmp_path / "deep.jsonld"
    path.write_text(
        '{"@context": {"haip": "https://w3id.org/haip/"}, "@id": "urn:p:1", "@type": "haip:Patient", '
        '"haip:x": ' + '{"haip:x": ' * depth + "1" + "}" * depth + "}"
    )
    records = _records(path, GOOD)
    assert len(records) == 2
    assert "nested" in records[0]["errors"][0]["message"]
    assert records[1] == _good()


def test_a_csv_cell_over_the_case_limit_refuses_its_file_only(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text('id,primary_site\nx,"' + "a" * 1_100_000 + '"\n')
    records = _records(path, GOOD)
    assert len(records) == 2
    assert "field larger than field limit" in records[0]["errors"][0]["message"]
    assert records[1] == _good()


def test_the_ontology_loaded_beside_the_data_is_neither_copied_nor_blamed(tmp_path: Path) -> None:
    """A store that holds the ontology next to the patients (or a shared record linked by another
    vocabulary) decides them as alone: the reader stops at the knowledge base's terms and follows only
    haip: links, rdf:type and rdfs:subClassOf."""
    path = tmp_path / "with-ontology.ttl"
    ontology = "".join(p.read_text(encoding="utf-8") + "\n" for p in resources.ontology_files())
    shared = (
        PREFIXES + "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<urn:example:ward-7:bed-12> rdfs:seeAlso <urn:ward> .\n"
        "<urn:ward> haip:truthValue haip:true ; haip:progresed true .\n"
    )
    path.write_text(ontology + GOOD.read_text(encoding="utf-8") + shared)
    (record,) = _records(path)
    expected = _good()
    assert json.dumps(record).replace(str(path), "") == json.dumps(expected).replace(str(GOOD), "")


def test_an_ill_typed_integer_is_refused_not_rewritten(tmp_path: Path) -> None:
    text = (CASES / "t-native-resected.ttl").read_text(encoding="utf-8")
    path = tmp_path / "ill.ttl"
    path.write_text(
        text.replace("haip:monthsSinceResection 2.0", 'haip:monthsSinceResection "++2"^^xsd:integer')
    )
    (record,) = _records(path)
    assert [e["key"] for e in record["errors"]] == ["months_since_liver_resection"]


def test_a_patient_in_a_named_graph_is_reported_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "graphs.jsonld"
    path.write_text(
        json.dumps(
            {
                "@context": {"haip": "https://w3id.org/haip/", "dcterms": "http://purl.org/dc/terms/"},
                "@graph": [
                    {"@id": "urn:p:1", "@type": "haip:Patient", "dcterms:identifier": "p1"},
                    {"@id": "urn:g:2", "@graph": [{"@id": "urn:p:2", "@type": "haip:Patient"}]},
                ],
            }
        )
    )
    records = _records(path)
    assert [r["patient"] for r in records] == ["p1", "urn:p:2"]
    assert "verdict" in records[0]
    assert "named graph" in records[1]["errors"][0]["message"]


def test_an_ill_typed_literal_is_one_message_and_no_traceback(tmp_path: Path) -> None:
    """rdflib logs a traceback when it reads "2x"^^xsd:integer; the command line shows only the shape's
    message (run as a process: the logging goes to the real stderr)."""
    path = tmp_path / "ill.ttl"
    path.write_text(
        PREFIXES + "@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n"
        '<urn:p:1> a haip:Patient ; dcterms:identifier "x" ;\n'
        '  haip:hasLiverResection [ a haip:LiverResection ; haip:monthsSinceResection "2x"^^xsd:integer ] .\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "haip_kg", "evaluate", str(path), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "months_since_liver_resection must be a number" in run.stderr
