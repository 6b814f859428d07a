"""The coverage table of `haip-kg check`: what the hand-written cases declare (`_covers`) and reach.

A small folder of three copied cases is measured and its counts compared with counts stated by hand;
each kind of broken declaration is made in a copy and must fail the check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import CASES, case_files

from haip_kg import check, coverage, resources
from haip_kg.cli import main

SMALL = ("a-adjuvant-only.json", "b-lung-mets-in-trial.json", "t-native-resected.ttl")
"""Three cases: a JSON case sheet deciding acceptable, one deciding consider, a native RDF case (its
_covers in its expected file) deciding option, the only one of the three where S5 applies."""


@pytest.fixture(scope="module")
def terms() -> coverage.Terms:
    return coverage.terms(check.knowledge_base())


@pytest.fixture
def small(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name in SMALL:
        shutil.copy(CASES / name, folder / name)
        expected = Path(name).stem + ".expected.json"
        shutil.copy(CASES / expected, folder / expected)
    return folder


def _edit(path: Path, **changes: Any) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _rows(text: str, first: str) -> dict[str, list[str]]:
    """The body rows of the table whose header starts with `first`, by first cell."""
    rows: dict[str, list[str]] = {}
    inside = False
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            inside = True
        elif inside and line.startswith("|"):
            if not cells[0].startswith("-"):
                rows[cells[0]] = cells[1:]
        elif inside:
            break
    return rows


def test_the_counts_of_a_small_folder(small: Path, terms: coverage.Terms) -> None:
    measured = coverage.measure(small, terms)
    assert measured.errors == ()
    assert measured.cases == 3
    table = coverage.table(measured)
    assert _rows(table, "statement") == {
        "S1": ["0", "3", "0", "0"],
        "S2": ["0", "3", "0", "0"],
        "S3a": ["2", "1", "2", "0"],
        "S3b": ["1", "1", "2", "0"],
        "S4": ["1", "0", "3", "0"],
        "S5": ["1", "1", "2", "0"],
    }
    verdicts = _rows(table, "verdict")
    assert {v: n for v, [n] in verdicts.items() if n != "0"} == {
        "acceptable": "1",
        "consider": "1",
        "option": "1",
    }
    assert set(verdicts) == {
        "acceptable",
        "consider",
        "option",
        "not-recommended",
        "not-applicable",
        "undetermined",
    }
    interpretations = _rows(table, "interpretation")
    assert interpretations["trial-means-enrolment"] == ["1", "1"]
    assert interpretations["selection-left-to-mdt"] == ["1", "1"]
    assert interpretations["adjuvant-not-a-metastatic-line"] == ["1", "1"]
    assert interpretations["first-line-until-first-progression"] == ["1", "3"]
    assert interpretations["haip-live-option"] == ["0", "3"]
    assert interpretations["affiliated-service-counts"] == ["0", "0"]
    assert "WARN  gap: no case relies on the interpretation affiliated-service-counts" in table
    assert "WARN  gap: no case reaches S4 applies" in table
    assert coverage.as_json(measured)["statements"]["S3a"] == {
        "declared": 2,
        "statuses": {"applies": 1, "not-applicable": 2, "undetermined": 0},
    }


def test_removing_the_only_case_that_reaches_a_status_lists_that_gap(
    small: Path, terms: coverage.Terms
) -> None:
    gaps = ("gap: no case reaches S5 applies", "gap: no case reaches the verdict option")
    assert not set(gaps) & set(coverage.measure(small, terms).warnings)
    for path in small.glob("t-native-resected*"):
        path.unlink()
    measured = coverage.measure(small, terms)
    assert measured.errors == () and measured.cases == 2
    assert set(gaps) <= set(measured.warnings)
    assert "gap: no case relies on the interpretation selection-left-to-mdt" in measured.warnings


BROKEN = {
    "unknown statement": (
        "a-adjuvant-only.json",
        {"statements": ["S3b", "S9"], "interpretations": []},
        "a-adjuvant-only: _covers names statement 'S9', unknown to the KB",
    ),
    "unknown interpretation": (
        "a-adjuvant-only.json",
        {"statements": [], "interpretations": ["adjuvant-is-a-line"]},
        "a-adjuvant-only: _covers names interpretation 'adjuvant-is-a-line', unknown to the KB",
    ),
    "interpretation declared, not relied on": (
        "a-adjuvant-only.json",
        {"statements": ["S3b"], "interpretations": ["trial-means-enrolment"]},
        "a-adjuvant-only: declares interpretation trial-means-enrolment, "
        "but its expected output does not rely on it",
    ),
    "interpretation declared in a native case's expected file, not relied on": (
        "t-native-resected.expected.json",
        {"statements": ["S5"], "interpretations": ["exclusion-overrides-indication"]},
        "t-native-resected: declares interpretation exclusion-overrides-indication, "
        "but its expected output does not rely on it",
    ),
    "malformed": (
        "b-lung-mets-in-trial.json",
        {"statements": "S4"},
        'b-lung-mets-in-trial.json: _covers must be {"statements": [slugs], "interpretations": [slugs]}, '
        "not {'statements': 'S4'}",
    ),
    "in both files": (
        "b-lung-mets-in-trial.expected.json",
        {"statements": ["S4"], "interpretations": []},
        "b-lung-mets-in-trial: _covers is in both b-lung-mets-in-trial.json and "
        "b-lung-mets-in-trial.expected.json; keep one",
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_a_broken_declaration_is_an_error(name: str, small: Path, terms: coverage.Terms) -> None:
    file, covers, error = BROKEN[name]
    _edit(small / file, _covers=covers)
    assert coverage.measure(small, terms).errors == (error,)


def test_a_declared_statement_the_expected_output_does_not_pin_is_an_error(
    small: Path, terms: coverage.Terms
) -> None:
    path = small / "a-adjuvant-only.expected.json"
    statements = json.loads(path.read_text(encoding="utf-8"))["statements"]
    del statements["S3b"]
    _edit(path, statements=statements)
    assert coverage.measure(small, terms).errors == (
        "a-adjuvant-only: declares S3b, but its expected output gives it no status",
    )


def test_a_case_that_declares_nothing_is_a_warning(small: Path, terms: coverage.Terms) -> None:
    path = small / "a-adjuvant-only.json"
    sheet = json.loads(path.read_text(encoding="utf-8"))
    del sheet["_covers"]
    path.write_text(json.dumps(sheet), encoding="utf-8")
    measured = coverage.measure(small, terms)
    assert measured.errors == ()
    assert "a-adjuvant-only: declares no _covers" in measured.warnings


def test_check_fails_on_a_broken_declaration_and_says_why(small: Path) -> None:
    _edit(small / "a-adjuvant-only.json", _covers={"statements": ["S9"]})
    result = CliRunner().invoke(main, ["check", "--no-reasoner", "--cases", str(small), "--format", "json"])
    assert result.exit_code == 1, result.output
    output = json.loads(result.stdout)
    failed = [c for c in output["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == [f"test-case coverage (3 case(s) in {small})"]
    assert failed[0]["details"] == ["a-adjuvant-only: _covers names statement 'S9', unknown to the KB"]
    assert output["coverage"]["statements"]["S5"]["statuses"]["applies"] == 1


def test_check_prints_the_table_and_passes_on_a_clean_folder(small: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--no-reasoner", "--cases", str(small)])
    assert result.exit_code == 0, result.output
    assert f"PASS  test-case coverage (3 case(s) in {small})" in result.stdout
    assert _rows(result.stdout, "statement")["S5"] == ["1", "1", "2", "0"]


def test_no_folder_of_cases_is_said_so(tmp_path: Path, terms: coverage.Terms) -> None:
    measured = coverage.measure(tmp_path / "missing", terms)
    assert measured.errors == () and measured.warnings == ()
    assert coverage.table(measured).startswith("Test-case coverage: no cases found")


def test_the_hand_written_cases_declare_coverage_their_outputs_show(terms: coverage.Terms) -> None:
    measured = coverage.measure(resources.cases_dir(), terms)
    assert measured.errors == (), "\n".join(measured.errors)
    assert measured.cases == len(case_files())
    assert not [w for w in measured.warnings if "declares no _covers" in w]
