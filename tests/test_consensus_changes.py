"""The issue's checks of a revision, made as an authoring group makes it: in `consensus/` alone, then
`haip-kg build` and `haip-kg diff OLD NEW COHORT`.

- **The 12-week change.** S5's adjuvant window set to 12 weeks in its statement file: the new knowledge
  base decides what the independent oracle decides with a 12-week window, and the diff reports exactly
  the patients whose decisions change, each transition's example attributed to the fact `resected`.
- **No change.** "S3 also allows progression after the second line" is already what the reading
  `first-line-until-first-progression` says: writing it into that interpretation's definition is reported
  as a changed interpretation, and the diff reports that no decision changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import policy_oracle
import pytest
import yaml

from haip_kg import authoring, resources

PARTS = ("ontology", "shapes", "queries", "examples", "consensus")

COHORT = [
    {
        "id": f"r{i:02d}",
        "primary_site": "colon",
        "histology": "adenocarcinoma",
        "liver_metastases": True,
        "liver_resection": "done",
        "resection_margin": margin,
        "months_since_liver_resection": months,
        "resectability": resectability,
        "resectability_assessed_by": "mdt",
        "extrahepatic_disease": "absent",
        "staging_imaging": ["pet-ct"],
        "enrolled_in_haip_trial": False,
        "systemic_lines": lines,
    }
    for i, (margin, months, resectability, lines) in enumerate(
        (margin, months, resectability, lines)
        for margin in ("R0", "R1")
        for months in (1, 2.7, 2.75, 2.76, 2.8, 3, 3.5)
        for resectability in ("resectable", "unresectable")
        for lines in ([], [{"regimen": "FOLFOX", "setting": "metastatic", "progressed": True}])
    )
]
"""Resected patients around 12 weeks (2.7598 months) and 3 months; half also recorded unresectable by the
MDT (a conflict through the disjointness while resected is true), half progressed on a first line."""


def _copy(folder: Path) -> Path:
    for part in PARTS:
        shutil.copytree(resources.root() / part, folder / part)
    return folder


def _edit(kb: Path, statement: str, change: Any) -> None:
    path = kb / "consensus" / "statements" / f"{statement}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    authoring.build(kb)


def _interpretation(document: dict[str, Any], slug: str) -> dict[str, Any]:
    (found,) = [i for i in document["interpretations"] if i["id"] == slug]
    return found


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haip_kg", *arguments], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cohort") / "cohort.json"
    path.write_text(json.dumps(COHORT), encoding="utf-8")
    return path


def _twelve_weeks(document: dict[str, Any]) -> None:
    (window,) = [
        p
        for p in _interpretation(document, "resected-adjuvant-window")["parameters"]
        if p["id"] == "adjuvant-window"
    ]
    window.update(value=12, unit="unit-week", text="12 weeks")


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": record["verdict"], **{s: e["status"] for s, e in record["statements"].items()}}


def test_the_twelve_week_window_set_in_the_authoring_source_alone(tmp_path: Path, cohort: Path) -> None:
    old, new = _copy(tmp_path / "old"), _copy(tmp_path / "new")
    _edit(new, "S5", _twelve_weeks)
    decided = _run("evaluate", "--kb", str(new), str(cohort), "--format", "jsonl", "-q")
    assert decided.returncode == 0, decided.stderr
    records = [json.loads(line) for line in decided.stdout.splitlines()]
    twelve = policy_oracle.Policy(adjuvant_window=(12, "weeks"))
    moved = set()
    for case, record in zip(COHORT, records, strict=True):
        assert _outcome(record) == _outcome(policy_oracle.decide(case, twelve)), case["id"]
        if _outcome(policy_oracle.decide(case)) != _outcome(record):
            moved.add(case["id"])
    assert moved  # the cohort exercises the change

    done = _run("diff", str(old), str(new), str(cohort), "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # the hand-written cases that pin a resection between 12 weeks and 3 months now disagree
    disagree = {c["case"] for c in report["test_cases"]["disagree"]}
    assert "b-r0-resection-three-months-score" in disagree, disagree
    changed_terms = {t["term"] for t in report["knowledge_base"]["terms"]}
    assert "haipp:adjuvant-window" in changed_terms, changed_terms
    assert report["cohort"]["patients_changed"] == len(moved)
    transitions = [t for ts in report["cohort"]["statements"].values() for t in ts] + report["cohort"][
        "verdict"
    ]
    assert transitions
    for transition in transitions:
        assert "resected" in transition["facts"], transition
    assert report["cohort"]["statements"]["S5"][0]["old"] == "applies"


def _states_second_line(document: dict[str, Any]) -> None:
    reading = _interpretation(document, "first-line-until-first-progression")
    reading["definition"] += " Progression after the second or a later line also counts."


def test_restating_what_a_reading_already_covers_changes_no_decision(tmp_path: Path, cohort: Path) -> None:
    old, new = _copy(tmp_path / "old"), _copy(tmp_path / "new")
    (tmp_path / "no-cases").mkdir()
    _edit(new, "S3a", _states_second_line)
    done = _run(
        "diff", str(old), str(new), str(cohort), "--format", "json", "--cases", str(tmp_path / "no-cases")
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (term,) = report["knowledge_base"]["terms"]
    assert (term["term"], term["change"]) == ("haipi:first-line-until-first-progression", "changed"), term
    assert report["cohort"]["patients_changed"] == 0
    assert report["cohort"]["statements"] == {} and report["cohort"]["verdict"] == []
    markdown = _run("diff", str(old), str(new), str(cohort), "--cases", str(tmp_path / "no-cases"))
    assert "No decision changes." in markdown.stdout, markdown.stdout
