"""The command line as a user runs it: formats, output file, exit codes, messages on stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rdflib import Graph, URIRef
from rdflib.namespace import RDF

from haip_kg import evaluate as evaluation
from haip_kg import inputs, resources
from haip_kg.cli import FORMATS, main
from haip_kg.namespaces import HAIP

INPUTS = Path(__file__).parent / "inputs"
ROOT = Path(__file__).parent.parent
EXAMPLES = str(resources.examples_dir())
EXAMPLE_FILE = str(resources.examples_dir() / "cases.json")


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
    code, out, _err = run("evaluate", str(INPUTS / "malformed.json"), str(INPUTS / "malformed.ttl"))
    assert code == 2
    assert [r["patient"] for r in json.loads(out)] == [None, None]


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


# --- the CLI never loses a case, and every failure is one message ----------------------------------------

GOOD = {"id": "good-1", "primary_site": "colon"}


def test_a_path_that_does_not_exist_is_a_usage_error_before_any_work() -> None:
    """A typo on the command line is found before anything is decided: nothing on stdout."""
    code, out, err = run("evaluate", EXAMPLES, "does-not-exist.json")
    assert code == 2 and out == ""
    assert "does-not-exist.json: no such file or folder" in err and "Traceback" not in err


def test_a_file_that_is_not_a_case_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, out, err = run("evaluate", str(tmp_path / "notes.txt"))
    assert code == 2 and out == "" and "not a case file" in err


def test_a_folder_reads_every_case_file_suffix_in_any_case_and_names_what_it_skips(tmp_path: Path) -> None:
    for number, name in enumerate(["a.JSON", "b.jsonl", "c.ndjson", "d.Json", "e.CSV"]):
        sheet = {"id": f"case-{number}", "primary_site": "colon"}
        (tmp_path / name).write_text(
            f"id,primary_site\ncase-{number},colon\n" if "csv" in name.lower() else json.dumps(sheet)
        )
    (tmp_path / "notes.txt").write_text("not a case")
    (tmp_path / "x.expected.json").write_text("{}")
    code, out, err = run("evaluate", str(tmp_path), "--format", "jsonl")
    assert code == 0
    assert [json.loads(line)["patient"] for line in out.splitlines()] == [f"case-{n}" for n in range(5)]
    assert f"skipped {tmp_path / 'notes.txt'}: not a case file" in err
    assert "expected.json" not in err


def test_output_into_a_missing_folder_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "out.json"
    code, out, err = run("evaluate", EXAMPLES, "-o", str(target))
    assert code == 2 and out == ""
    assert "does not exist" in err and "decided" not in err
    assert not target.parent.exists()


def test_output_that_is_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    code, _out, err = run("evaluate", EXAMPLES, "-o", str(tmp_path))
    assert code == 2 and "is a folder" in err


NOTHING_LISTENING = ("--endpoint", "http://127.0.0.1:9/query", "--store-endpoint", "http://127.0.0.1:9/store")


def test_a_failed_endpoint_run_leaves_no_partial_output(tmp_path: Path) -> None:
    """The JSON array is opened with its first record: a run that fails before one leaves nothing, not
    `[`, and no output file."""
    for fmt in FORMATS:
        code, out, err = run(
            "evaluate", *NOTHING_LISTENING, "--data-graph", "https://e.org/g", "--format", fmt
        )
        assert (code, out) == (2, ""), fmt
        assert err.startswith("haip-kg: cannot reach http://127.0.0.1:9/") and "Traceback" not in err
    target = tmp_path / "out.json"
    code, _out, _err = run(
        "evaluate", *NOTHING_LISTENING, "--data-graph", "https://e.org/g", "-o", str(target)
    )
    assert code == 2 and not target.exists()


def test_a_failure_after_some_records_still_gives_valid_json(monkeypatch: pytest.MonkeyPatch) -> None:
    real = evaluation.evaluate

    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        yield next(real(*args, **kwargs))
        raise evaluation.RunFailed("lost the Dask scheduler at tcp://x: gone")

    monkeypatch.setattr(evaluation, "evaluate", failing)
    code, out, err = run("evaluate", EXAMPLES, "--workers", "1", "--batch-size", "2")
    assert code == 2 and err.strip().endswith("haip-kg: lost the Dask scheduler at tcp://x: gone")
    assert [r["patient"] for r in json.loads(out)] == ["demo-001", "demo-002"]


def test_a_store_url_that_is_not_http_is_a_usage_error() -> None:
    code, _out, err = run(
        "evaluate", "--endpoint", "not-a-url", "--store-endpoint", "x", "--data-graph", "https://e.org/g"
    )
    assert code == 2 and "is not an http:// or https:// URL" in err


def test_an_unreachable_scheduler_is_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluation, "SCHEDULER_TIMEOUT", 0.5)
    code, out, err = run("evaluate", EXAMPLE_FILE, "--scheduler", "tcp://127.0.0.1:9")
    assert (code, out) == (2, "")
    assert err.startswith("haip-kg: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [
        (KeyboardInterrupt(), 130, "interrupted"),
        (BrokenPipeError(32, "Broken pipe"), 141, "broken pipe"),
        (OSError(28, "No space left on device"), 2, "cannot write standard output: No space left on device"),
        (RuntimeError("a bug"), 2, "unexpected error (RuntimeError: a bug)"),
    ],
    ids=["interrupt", "broken-pipe", "disk-full", "bug"],
)
def test_every_failure_is_one_line_and_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException, code: int, message: str
) -> None:
    def failing(*_args: Any, **_kwargs: Any) -> Iterator[Any]:
        raise raised
        yield

    monkeypatch.setattr(evaluation, "evaluate", failing)
    monkeypatch.delenv("HAIP_KG_TRACEBACK", raising=False)
    result, out, err = run("evaluate", EXAMPLE_FILE)
    assert (result, out) == (code, "")
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_closed_pipe_on_stdout_ends_quietly(tmp_path: Path) -> None:
    """`haip-kg evaluate ... | head -1`: exit 141, one line on stderr, no traceback. The output (200
    records, about 500 KB) is larger than a pipe's buffer, so writing must meet the closed pipe."""
    examples = json.loads(Path(EXAMPLE_FILE).read_text())
    cohort = [{**case, "id": f"{case['id']}-{n}"} for n in range(30) for case in examples][:200]
    (tmp_path / "cohort.json").write_text(json.dumps(cohort))
    command = [
        sys.executable,
        "-m",
        "haip_kg",
        "evaluate",
        str(tmp_path / "cohort.json"),
        "--format",
        "jsonl",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "broken pipe" in err and "Traceback" not in err and "Exception ignored" not in err


def test_an_unreadable_file_is_an_error_record_and_the_others_are_decided(tmp_path: Path) -> None:
    (tmp_path / "latin1.csv").write_bytes("id,primary_site\nJosé,colon\n".encode("latin-1"))
    code, out, err = run("evaluate", str(tmp_path / "latin1.csv"), EXAMPLE_FILE)
    records = json.loads(out)
    assert code == 1 and len(records) == 8
    assert "cannot read" in records[0]["errors"][0]["message"] and "Traceback" not in err


MESSAGE_FILES = re.compile(r"(?<![\w/.-])((?:[\w-]+/)+[\w.-]+\.(?:md|ttl|rq))\b")


@pytest.mark.parametrize(
    "path",
    sorted({p.relative_to(ROOT).as_posix() for p in (ROOT / "haip_kg").glob("*.py")}),
)
def test_every_file_a_message_points_to_exists(path: str) -> None:
    """A message that says "see docs/case-sheet.md" must name a file the project has."""
    named = MESSAGE_FILES.findall((ROOT / path).read_text(encoding="utf-8"))
    missing = [name for name in named if not (ROOT / name).exists()]
    assert not missing, f"{path} points to files that do not exist: {missing}"


def test_an_unknown_key_message_points_to_the_case_sheet_doc() -> None:
    sheet = {"id": "typo", "primary_sit": "colon"}
    (record,) = [
        o.record for b in evaluation.evaluate(list(inputs._from_sheets("t", [sheet]))) for o in b.outcomes
    ]
    (named,) = MESSAGE_FILES.findall(record["errors"][0]["message"])
    assert named == "docs/case-sheet.md" and (ROOT / named).exists()
