"""The command line as a user runs it: formats, output file, exit codes, messages on stderr."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from haip_kg import resources
from haip_kg.cli import main
from haip_kg.namespaces import HAIP

INPUTS = Path(__file__).parent / "inputs"
EXAMPLES = str(resources.examples_dir())


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_evaluate_examples_as_json() -> None:
    code, out, err = run("evaluate", EXAMPLES)
    records = json.loads(out)
    assert code == 0
    assert [r["patient"] for r in records] == [f"demo-00{i}" for i in range(1, 8)]
    assert records[0]["verdict"] == "consider"
    assert records[0]["consensus"]["doi"] == "10.3747/co.21.1577"
    assert "7 decided, 0 refused" in err


def test_evaluate_jsonl_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    code, out, _err = run("evaluate", EXAMPLES, "--format", "jsonl", "-o", str(target))
    lines = target.read_text().splitlines()
    assert code == 0 and out == ""
    assert [json.loads(line)["patient"] for line in lines] == [f"demo-00{i}" for i in range(1, 8)]


def test_evaluate_markdown() -> None:
    code, out, _err = run("evaluate", EXAMPLES, "--format", "markdown")
    assert code == 0
    assert "## demo-001: consider" in out
    assert "| S4 | applies |" in out  # demo-003
    assert "doi:10.3747/co.21.1577" in out


def test_evaluate_turtle_is_rdf_with_a_decision_per_patient() -> None:
    code, out, _err = run("evaluate", EXAMPLES, "--format", "turtle")
    graph = Graph().parse(data=out, format="turtle")
    decisions = set(graph.subjects(RDF.type, HAIP.PatientDecision))
    assert code == 0 and len(decisions) == 7
    demo1 = URIRef("https://w3id.org/haip/case/demo-001/decision")
    assert graph.value(demo1, HAIP.verdict) == HAIP.Consider
    s3a = URIRef("https://w3id.org/haip/case/demo-001/decision/S3a")
    assert graph.value(s3a, HAIP.status) == HAIP.Applies
    assert set(graph.objects(s3a, HAIP.usedFact)), "a decision links the facts it used"


def test_refused_case_gives_exit_1_and_is_still_in_the_output() -> None:
    code, out, err = run("evaluate", str(INPUTS / "cases.csv"), str(INPUTS / "malformed.json"))
    records = json.loads(out)
    assert code == 1
    assert len(records) == 4 and "errors" in records[3]
    assert "refused:" in err and "malformed.json" in err


def test_nothing_readable_gives_exit_2() -> None:
    code, out, _err = run("evaluate", str(INPUTS / "malformed.json"), "does-not-exist.json")
    assert code == 2
    assert len(json.loads(out)) == 2


def test_usage_errors_give_exit_2() -> None:
    assert run("evaluate")[0] == 2
    assert run("evaluate", EXAMPLES, "--format", "xml")[0] == 2


def test_validate_reports_per_case() -> None:
    invalid = Path(__file__).parent / "shapes" / "invalid"
    code, out, _err = run("validate", str(INPUTS / "cases.csv"), str(invalid))
    assert code == 1
    assert "csv-001: valid" in out
    blocks: dict[str, list[str]] = {}  # "<source>: <case>: <result>" -> the error lines under it
    header = ""
    for line in out.splitlines():
        if line.startswith("  - "):
            blocks[header].append(line[4:])
        else:
            header = line
            blocks[header] = []
    for path in sorted(invalid.iterdir()):  # each INVALID; a case sheet <key>--<why> has an error on <key>
        reported = [h for h in blocks if h.startswith(f"{path}: ")]
        assert reported, f"{path.name} is not reported"
        assert all(h.endswith(": INVALID") for h in reported), reported
        errors = [e for h in reported for e in blocks[h]]
        key = path.stem.split("--")[0]
        assert path.suffix != ".json" or any(e.startswith(f"{key}: ") for e in errors), (path.name, errors)
    ecog = [e for h in blocks if "/ecog--" in h for e in blocks[h]]
    assert ecog and all(e.startswith("ecog: ecog must be a whole number from 0 to 5") for e in ecog)


def test_check_without_reasoner_passes() -> None:
    code, out, _err = run("check", "--no-reasoner")
    assert code == 0, out
    assert "FAIL" not in out and "PASS  knowledge-base shapes" in out


def test_a_graph_option_must_be_an_iri() -> None:
    """Graph names go to the store as IRIs (the query's dataset), so one that is not an IRI is a usage
    error, before any store is contacted."""
    for option in ("--data-graph", "--result-graph"):
        graphs = {"--data-graph": "https://example.org/g", option: "https://example.org/g> } DROP ALL {"}
        code, _out, err = run(
            "evaluate",
            "--endpoint",
            "http://127.0.0.1:9/query",
            "--store-endpoint",
            "http://127.0.0.1:9/store",
            *[part for name, value in graphs.items() for part in (name, value)],
        )
        assert code == 2
        assert "not an absolute IRI" in err
