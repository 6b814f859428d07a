"""Reading cases: JSON shapes, CSV, native Turtle and JSON-LD, and bad input that loses nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import decide_sheets
from rdflib import Graph
from rdflib.compare import isomorphic

from haip_kg import evaluate, inputs

INPUTS = Path(__file__).parent / "inputs"
COMPLETE_CENTRE = {
    f"centre_{k}": "yes"
    for k in ("hpb_surgery", "medical_oncology", "interventional_radiology", "nursing", "nuclear_medicine")
}


def _records(*paths: Path | str) -> list[dict[str, Any]]:
    cases = [c for p in inputs.expand([str(x) for x in paths]) for c in inputs.read(p)]
    return [o.record for b in evaluate.evaluate(cases) for o in b.outcomes]


def _decisions(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["patient"],
            r["verdict"],
            tuple((s, v["status"], v.get("met")) for s, v in r["statements"].items()),
        )
        for r in records
    ]


def test_csv_reads_as_the_same_cases_as_json() -> None:
    from_csv = _records(INPUTS / "cases.csv")
    from_json = _records(INPUTS / "cases-as-json.json")
    assert [r["patient"] for r in from_csv] == ["csv-001", "csv-002", "csv-003"]
    assert _decisions(from_csv) == _decisions(from_json)
    assert [r["verdict"] for r in from_csv] == ["consider", "acceptable", "not-recommended"]
    assert from_csv[0]["flags"] == ["beyond-second-line"]


def test_json_object_array_and_cases_wrapper_are_the_same(tmp_path: Path) -> None:
    sheet = {"id": "one", "primary_site": "colon", "histology": "adenocarcinoma", "liver_metastases": True}
    shapes = {"object.json": sheet, "array.json": [sheet], "wrapped.json": {"cases": [sheet]}}
    results = []
    for name, content in shapes.items():
        (tmp_path / name).write_text(json.dumps(content))
        results.append(_decisions(_records(tmp_path / name)))
    assert results[0] == results[1] == results[2]
    assert results[0][0][1] == "undetermined"


def test_native_turtle_patients_are_decided() -> None:
    records = {r["patient"]: r for r in _records(INPUTS / "two-patients.ttl")}
    assert records["ttl-1"]["verdict"] == "not-applicable"
    assert records["ttl-2"]["verdict"] == "not-recommended"
    assert records["ttl-2"]["statements"]["S4"]["status"] == "applies"


def test_jsonld_patient_is_decided() -> None:
    (record,) = _records(INPUTS / "one-patient.jsonld")
    assert record["patient"] == "jsonld-1"
    assert record["verdict"] == "not-applicable"
    assert "primary site anal canal: not colorectal" in record["statements"]["S3a"]["reasons"]


def test_unknown_key_is_refused_with_a_suggestion() -> None:
    (record,) = decide_sheets([{"id": "typo", "primary_sit": "colon"}])
    assert record["errors"][0]["key"] == "primary_sit"
    assert "did you mean 'primary_site'" in record["errors"][0]["message"].lower()


def test_wrong_structures_are_refused_with_the_key() -> None:
    sheets = [
        {"id": "a", "systemic_lines": {"regimen": "FOLFOX"}},
        {"id": "b", "cea": 12},
        {"id": "c", "age": [60]},
        {"id": "d", "extrahepatic_sites": "lung"},
        {"id": "e", "systemic_lines": [{"regimen": "FOLFOX", "cycles": 6}]},
    ]
    keys = [[e["key"] for e in r["errors"]] for r in decide_sheets(sheets)]
    assert keys == [
        ["systemic_lines"],
        ["cea"],
        ["age"],
        ["extrahepatic_sites"],
        ["systemic_lines[0].cycles"],
    ]


def test_missing_or_bad_id_and_non_objects_are_refused() -> None:
    records = decide_sheets([{"primary_site": "colon"}, {"id": 7}, {"id": "  "}, ["not", "an", "object"]])
    assert [r["patient"] for r in records] == [None, None, None, None]
    assert [r["errors"][0]["key"] for r in records] == ["id", "id", "id", None]


def test_later_duplicate_id_is_refused_and_the_first_is_decided() -> None:
    sheet = {"id": "twice", "primary_site": "colon"}
    first, second = decide_sheets([sheet, dict(sheet)])
    assert "verdict" in first
    assert second["errors"][0]["key"] == "id" and "duplicate" in second["errors"][0]["message"]


def test_one_broken_case_in_a_large_batch_loses_nothing() -> None:
    sheets: list[dict[str, Any]] = [
        {
            "id": f"p{i}",
            "primary_site": "colon",
            "histology": "adenocarcinoma",
            "liver_metastases": True,
            "resectability": "unresectable",
            "resectability_assessed_by": "mdt",
            "systemic_lines": [],
            **COMPLETE_CENTRE,
        }
        for i in range(600)
    ]
    sheets[321]["ecog"] = "poor"
    cases = list(inputs._from_sheets("big.json", sheets))
    records = [o.record for b in evaluate.evaluate(cases, batch_size=250) for o in b.outcomes]
    assert [r["patient"] for r in records] == [f"p{i}" for i in range(600)]
    refused = [r for r in records if "errors" in r]
    assert [r["patient"] for r in refused] == ["p321"]
    assert refused[0]["errors"][0]["key"] == "ecog"
    assert all(r["statements"]["S3b"]["status"] == "applies" for r in records if "errors" not in r)


def test_malformed_files_become_error_records_and_other_files_are_still_read() -> None:
    records = _records(INPUTS / "malformed.json", INPUTS / "malformed.ttl", INPUTS / "cases.csv")
    assert [r["patient"] for r in records] == [None, None, "csv-001", "csv-002", "csv-003"]
    assert "not valid JSON" in records[0]["errors"][0]["message"]
    assert records[0]["source"].endswith("malformed.json")
    assert "not valid turtle" in records[1]["errors"][0]["message"]


def test_folder_expands_to_its_case_files_in_name_order() -> None:
    files = inputs.expand([str(INPUTS)])
    assert [Path(f).name for f in files] == sorted(Path(f).name for f in files)
    assert not any(f.endswith(".expected.json") for f in files)


def test_contract_breach_on_a_blank_node_of_a_native_patient_is_refused(tmp_path: Path) -> None:
    turtle = """@prefix haip: <https://w3id.org/haip/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
<https://example.org/p/bnode-1> a haip:Patient ; dcterms:identifier "bnode-1" ;
    haip:hasPrimaryTumour [ a haip:PrimaryTumour ; haip:primarySite "colon" ] .
"""
    (tmp_path / "bnode.ttl").write_text(turtle)
    (record,) = _records(tmp_path / "bnode.ttl")
    assert record["patient"] == "bnode-1"
    assert "errors" in record, record
    (error,) = record["errors"]  # a literal where the ontology wants an IRI (queries/input/)
    assert error["key"] == "haip:primarySite" and "haip:Colon" in error["message"], error


def test_large_rdf_files_read_through_an_on_disk_store_give_the_same_cases(monkeypatch: Any) -> None:
    in_memory = list(inputs.read(str(INPUTS / "two-patients.ttl")))
    monkeypatch.setattr(inputs, "ON_DISK_BYTES", 0)
    on_disk = list(inputs.read(str(INPUTS / "two-patients.ttl")))
    assert [c.case_id for c in on_disk] == ["ttl-1", "ttl-2"]
    for disk, memory in zip(on_disk, in_memory, strict=True):
        assert disk.triples and isomorphic(_graph(disk.triples), _graph(memory.triples))


def _graph(triples: Any) -> Graph:
    graph = Graph()
    for triple in triples:
        graph.add(triple)
    return graph


BOOLEAN_SPELLINGS = {"true": ["yes", "TRUE", "Yes", "tRuE"], "false": ["no", "FALSE", "No", "nO"]}


@pytest.mark.parametrize("variant", range(4))
def test_csv_booleans_are_true_false_or_yes_no_in_any_letter_case(tmp_path: Path, variant: int) -> None:
    """docs/case-sheet.md: a boolean cell (a column or a field of a line) is true/false or yes/no, in any
    letter case; the centre_* columns, whose values are the words yes/no/affiliated, stay words."""
    lines = (INPUTS / "cases.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    booleans = {"liver_metastases", "enrolled_in_haip_trial", "planned_haip", "planned_concurrent_systemic"}

    def spelt(cell: str, column: str) -> str:
        if column in booleans and cell in BOOLEAN_SPELLINGS:
            return BOOLEAN_SPELLINGS[cell][variant]
        if column == "systemic_lines":
            return "|".join(BOOLEAN_SPELLINGS.get(part, [part] * 4)[variant] for part in cell.split("|"))
        return cell

    text = "\n".join(
        [lines[0]] + [",".join(spelt(c, h) for c, h in zip(r, header, strict=True)) for r in rows]
    )
    assert text != (INPUTS / "cases.csv").read_text().strip()
    (tmp_path / "spelt.csv").write_text(text + "\n")
    assert _decisions(_records(tmp_path / "spelt.csv")) == _decisions(_records(INPUTS / "cases-as-json.json"))


def test_a_centre_column_is_not_a_boolean() -> None:
    """centre_* values are the words yes/no/affiliated: a cell is read as the word, never as a boolean."""
    (row,) = inputs._csv_rows("id,centre_nursing,centre_hpb_surgery,ascites\nc-1,true,YES,YES\n")
    assert row == {"id": "c-1", "centre_nursing": "true", "centre_hpb_surgery": "YES", "ascites": True}


def test_a_systemic_line_with_too_many_fields_is_refused(tmp_path: Path) -> None:
    (tmp_path / "lines.csv").write_text("id,systemic_lines\nl-1,FOLFOX|metastatic|PD|yes|no|3|extra\n")
    (record,) = _records(tmp_path / "lines.csv")
    assert record["errors"][0]["key"] == "systemic_lines[0]"
    assert (
        "regimen|setting|response|progressed|stopped_for_toxicity|months_since_end"
        in record["errors"][0]["message"]
    )


@pytest.mark.parametrize("cell", ["FOLFOX|metastatic|PD|yes|no;", ";FOLFOX|metastatic|PD|yes|no", "a;;b"])
def test_an_empty_systemic_line_is_refused_not_read_as_a_course(tmp_path: Path, cell: str) -> None:
    """A ';' too many would otherwise add a course with nothing recorded (and unsettle S3a/S3b)."""
    (tmp_path / "lines.csv").write_text(f"id,systemic_lines\nl-1,{cell}\nl-2,FOLFOX|metastatic|PD|yes|no\n")
    refused, decided = _records(tmp_path / "lines.csv")
    assert [e["key"] for e in refused["errors"]] == [f"systemic_lines[{cell.split(';').index('')}]"]
    assert "is empty" in refused["errors"][0]["message"]
    assert "verdict" in decided


def test_csv_line_fields_follow_the_order_in_the_mapping() -> None:
    """The order of a systemic_lines cell is data (sh:order in ontology/casesheet.ttl), not a Python list."""
    from haip_kg import casesheet

    assert casesheet.mapping().cell_fields("systemic_lines") == [
        "regimen",
        "setting",
        "response",
        "progressed",
        "stopped_for_toxicity",
        "months_since_end",
    ]


def test_a_csv_number_that_is_not_finite_is_refused_on_its_key(tmp_path: Path) -> None:
    (tmp_path / "nan.csv").write_text(
        "id,largest_liver_met_cm,cea_value,cea_unit\nn-1,nan,inf,ng/mL\nn-2,2.5,,\n"
    )
    refused, decided = _records(tmp_path / "nan.csv")
    assert [e["key"] for e in refused["errors"]] == ["largest_liver_met_cm", "cea.value"]
    assert "verdict" in decided


def test_a_csv_header_naming_a_column_twice_refuses_every_row(tmp_path: Path) -> None:
    """A reader would keep only the last of the two cells: every row is refused instead of losing one."""
    (tmp_path / "twice.csv").write_text("id,age,age\nt-1,50,60\nt-2,,\n")
    records = _records(tmp_path / "twice.csv")
    assert len(records) == 2 and all("'age'" in r["errors"][0]["message"] for r in records)
