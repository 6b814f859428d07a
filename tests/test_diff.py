"""`haip-kg diff`, `--kb` and `evaluate --facts`.

Knowledge bases are copies of the installed one under tmp_path (ontology/, shapes/, queries/, examples/);
the changed one has S5's adjuvant window shortened from 3 to 2 months (in record-resected.rq, or in
ontology/parameters.ttl once the window is a parameter there). The cohort is a few copies of the case
b-r0-resection-three-months-score (R0 resection, S5 applies) at months around the window. Every decision
runs in a fresh process (the diff's own `haip-kg evaluate` runs), so no cache sees two knowledge bases.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CASES, decide_sheets, load
from rdflib import Graph

from haip_kg import cli, diff, engine, inputs, report, resources
from haip_kg.namespaces import HAIP

KB_PARTS = ("ontology", "shapes", "queries", "examples", "consensus")
BASE = "b-r0-resection-three-months-score"
"""A case S5 applies to: R0 resection exactly 3 months ago."""
UNMOVED = "a-adjuvant-only"
"""A case without liver resection: the window does not touch it."""
MONTHS = {"m1": 1, "m2": 2, "m2.5": 2.5, "m3": 3, "m4": 4}
"""The cohort: the base case at these months since resection; with a 2-month window m2.5 and m3 move.
Its resectability is recorded (resectable, by the MDT), so that `unresectable` is false on both sides
(otherwise it follows `resected` through their disjointness, and the diff reports both facts)."""


def _copy(folder: Path) -> Path:
    for part in KB_PARTS:
        if (resources.root() / part).is_dir():
            shutil.copytree(resources.root() / part, folder / part)
    return folder


REFRESH = """
import sys
from haip_kg import footprints, resources
resources.use_kb(sys.argv[1])
(resources.query_dir("") / footprints.GENERATED).write_text(
    footprints.generated_text(footprints.analyse()), encoding="utf-8")
"""
"""python -c REFRESH KB: rewrites KB's queries/families.json for its changed rules and ontology (else every
process deciding with KB analyses the rules again, for seconds)."""


def _refresh(kb: Path) -> Path:
    subprocess.run([sys.executable, "-c", REFRESH, str(kb)], check=True)
    return kb


def _set_window(kb: Path, months: int) -> None:
    """S5's adjuvant window set to `months` in whichever form the knowledge base holds it: the value of
    the parameter haipp:adjuvant-window in ontology/ (written by hand or generated from consensus/; the
    copy's consensus/ is not rebuilt), else the literal 3 of record-resected.rq."""
    for path in sorted((kb / "ontology").glob("*.ttl")):
        text = path.read_text(encoding="utf-8")
        found = re.search(r"^haipp:adjuvant-window\b.*?qudt:numericValue (\S+)", text, re.S | re.M)
        if found:
            assert " .\n" not in text[found.start() : found.start(1)], "the parameter has no value"
            path.write_text(text[: found.start(1)] + f"{months}.0" + text[found.end(1) :], encoding="utf-8")
            return
    rule = kb / "queries" / "rules" / "record-resected.rq"
    pattern = r"(\?mo(?:nths)? (?:>|<=) )3\b"
    text, count = re.subn(pattern, rf"\g<1>{months}", rule.read_text(encoding="utf-8"))
    assert count, "record-resected.rq holds no window literal to change"
    rule.write_text(text, encoding="utf-8")


def _cohort(folder: Path) -> Path:
    base = load(CASES / f"{BASE}.json")
    recorded = {"resectability": "resectable", "resectability_assessed_by": "mdt"}
    sheets = [
        {**base, **recorded, "id": name, "months_since_liver_resection": m} for name, m in MONTHS.items()
    ]
    path = folder / "cohort.json"
    path.write_text(json.dumps(sheets), encoding="utf-8")
    return path


def _cases(folder: Path) -> Path:
    """A tests/cases folder with BASE (broken by the 2-month window) and UNMOVED."""
    folder.mkdir()
    for name in (BASE, UNMOVED):
        for suffix in (".json", ".expected.json"):
            shutil.copy(CASES / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def _diff(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haip_kg", "diff", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("diff")
    old, new = _copy(tmp / "old"), _copy(tmp / "new")
    _set_window(new, 2)
    _refresh(new)
    small = tmp / "one-case"
    small.mkdir()
    for suffix in (".json", ".expected.json"):
        shutil.copy(CASES / f"{UNMOVED}{suffix}", small / f"{UNMOVED}{suffix}")
    return {
        "tmp": tmp,
        "old": old,
        "new": new,
        "cohort": _cohort(tmp),
        "cases": _cases(tmp / "cases"),
        "one-case": small,
    }


@pytest.fixture(scope="module")
def window(setup: dict[str, Path]) -> dict[str, Any]:
    """The diff of the 2-month window, in JSON twice (for determinism) and in markdown with --accept."""
    args = (str(setup["old"]), str(setup["new"]), str(setup["cohort"]), "--cases", str(setup["cases"]))
    before = {p.name: p.read_bytes() for p in setup["cases"].iterdir()}
    first, second = _diff(*args, "--format", "json"), _diff(*args, "--format", "json")
    accepted = _diff(*args, "--accept")
    after = {p.name: p.read_bytes() for p in setup["cases"].iterdir()}
    for done in (first, second, accepted):
        assert done.returncode == 0, done.stderr
    return {
        "json": json.loads(first.stdout),
        "runs": (first.stdout, second.stdout),
        "markdown": accepted.stdout,
        "accept_stderr": accepted.stderr,
        "before": before,
        "after": after,
    }


######################## The 2-month window ########################


def test_the_window_change_moves_the_patients_between_the_windows(window: dict[str, Any]) -> None:
    cohort = window["json"]["cohort"]
    assert cohort["patients"] == len(MONTHS)
    assert cohort["patients_changed"] == 2
    (s5,) = cohort["statements"]["S5"]
    assert (s5["old"], s5["new"], s5["patients"], s5["example"]) == ("applies", "not-applicable", 2, "m2.5")
    assert s5["facts"] == {"resected": [True, False]}
    assert window["json"]["cohort"]["refused_on_one_side"] == []
    for transitions in [*cohort["statements"].values(), cohort["verdict"]]:
        for transition in transitions:
            assert transition["example"] == "m2.5"
            assert "resected" in transition["facts"]


def test_the_window_change_is_reported_as_a_changed_rule(window: dict[str, Any]) -> None:
    kb = window["json"]["knowledge_base"]
    changed = [f["file"] for f in kb["rules"]] + [t["term"] for t in kb["terms"]]
    assert changed in (["queries/rules/record-resected.rq"], ["haipp:adjuvant-window"]), changed
    if kb["terms"]:
        (predicate,) = kb["terms"][0]["predicates"]
        assert (predicate["predicate"], predicate["new"]) == ("qudt:numericValue", ['"2.0"^^xsd:decimal'])
    assert kb["shapes"] == []


def test_the_markdown_names_the_transition_and_its_fact(window: dict[str, Any]) -> None:
    text = window["markdown"]
    assert "2 of 5 patients changed." in text
    assert "### S5" in text
    assert "| applies | not-applicable | 2 | m2.5 | resected: true -> false |" in text
    assert f"| {BASE} |" in text and f"| {UNMOVED} |" not in text


def test_two_runs_give_the_same_bytes(window: dict[str, Any]) -> None:
    first, second = window["runs"]
    assert first == second


def test_accept_rewrites_only_the_expected_file_that_no_longer_holds(
    window: dict[str, Any], setup: dict[str, Path]
) -> None:
    before, after = window["before"], window["after"]
    rewritten = [name for name in sorted(before) if before[name] != after[name]]
    assert rewritten == [f"{BASE}.expected.json"]
    assert f"rewrote {setup['cases'] / f'{BASE}.expected.json'}" in window["accept_stderr"]
    expected = json.loads(after[f"{BASE}.expected.json"])
    assert expected["statements"]["S5"]["status"] == "not-applicable"
    assert list(expected) == list(json.loads(before[f"{BASE}.expected.json"]))
    assert diff.broken_cases(diff.Side("new", setup["new"]), setup["cases"]) == []


######################## No change ########################


def test_identical_knowledge_bases_change_nothing(setup: dict[str, Path]) -> None:
    done = _diff(
        str(setup["old"]),
        str(setup["old"]),
        str(setup["cohort"]),
        "--cases",
        str(setup["one-case"]),
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["knowledge_base"] == {"terms": [], "rules": [], "shapes": []}
    assert document["cohort"]["patients_changed"] == 0
    assert document["cohort"]["statements"] == {} and document["cohort"]["verdict"] == []
    assert "No decision changes." in diff.as_markdown(document)


def test_a_reworded_interpretation_is_a_changed_term_and_no_decision_change(setup: dict[str, Path]) -> None:
    reworded = _copy(setup["tmp"] / "reworded")
    path = reworded / "ontology" / "statements.ttl"
    text = path.read_text(encoding="utf-8")
    found = re.search(r'^haipi:resected-adjuvant-window\s.*?skos:definition "', text, re.S | re.M)
    assert found and " .\n" not in found.group(), "the interpretation has no definition"
    at = found.end()
    path.write_text(text[:at] + "Reworded for a test. " + text[at:], encoding="utf-8")
    _refresh(reworded)
    done = _diff(
        str(setup["old"]),
        str(reworded),
        str(setup["cohort"]),
        "--cases",
        str(setup["one-case"]),
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    (term,) = document["knowledge_base"]["terms"]
    assert (term["kind"], term["term"], term["change"]) == (
        "interpretation",
        "haipi:resected-adjuvant-window",
        "changed",
    )
    (predicate,) = term["predicates"]
    assert predicate["predicate"] == "skos:definition"
    assert predicate["new"][0].startswith('"Reworded for a test. ')
    assert not predicate["old"][0].startswith('"Reworded')
    assert document["cohort"]["patients_changed"] == 0
    assert document["test_cases"]["disagree"] == []


######################## Sides ########################


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_git_revisions_of_the_repository_here(setup: dict[str, Path], tmp_path: Path) -> None:
    """Two commits of a throwaway repository: the second adds a flag; `diff HEAD~1 git:HEAD` run in the
    repository reports it, naming the commits."""
    repo = _copy(tmp_path / "repo")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    path = repo / "ontology" / "statements.ttl"
    flag = (
        '\nhaipf:test-flag a haip:Flag, owl:NamedIndividual ; haip:slug "test-flag" ; rdfs:label "test"@en ;'
        ' skos:definition "A flag added for a test."@en ;'
        " rdfs:isDefinedBy <https://w3id.org/haip/statements> .\n"
    )
    path.write_text(path.read_text(encoding="utf-8") + flag, encoding="utf-8")
    _git(repo, "commit", "-qam", "two")
    done = _diff("HEAD~1", "git:HEAD", "--cases", str(setup["one-case"]), "--format", "json", cwd=repo)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [(t["kind"], t["term"], t["change"]) for t in document["knowledge_base"]["terms"]] == [
        ("flag", "haipf:test-flag", "added")
    ]
    assert len(document["old"]["commit"]) == len(document["new"]["commit"]) == 40
    assert str(tmp_path) not in done.stdout  # no temporary path in the report


@pytest.mark.parametrize(
    ("spec", "message"),
    [("git:no-such-revision", "not a revision"), ("{tmp}", "no ontology/, shapes/, queries/ folder")],
    ids=["unknown-revision", "not-a-knowledge-base"],
)
def test_a_side_that_cannot_be_used_is_a_usage_error(
    setup: dict[str, Path], tmp_path: Path, spec: str, message: str
) -> None:
    done = _diff(str(setup["old"]), spec.format(tmp=tmp_path), cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and done.stdout == ""


def _evaluate_has(option: str) -> bool:
    return any(option in p.opts for p in cli.evaluate.params)


@pytest.mark.skipif(not _evaluate_has("--reading"), reason="evaluate has no --reading yet")
def test_a_reading_decides_the_current_knowledge_base_under_it(setup: dict[str, Path]) -> None:
    """The installed knowledge base against itself under the 12-week reading, given as a reading and as
    the profile that holds just it: 12 weeks (2.76 months) moves m3 only."""
    for spec in ("reading:resected-adjuvant-window=12-weeks", "profile:trial-window"):
        done = _diff(
            str(setup["old"]),
            spec,
            str(setup["cohort"]),
            "--cases",
            str(setup["one-case"]),
            "--format",
            "json",
        )
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        assert document["knowledge_base"] == {"terms": [], "rules": [], "shapes": []}
        (s5,) = document["cohort"]["statements"]["S5"]
        assert (s5["old"], s5["new"], s5["patients"], s5["example"]) == ("applies", "not-applicable", 1, "m3")
        assert s5["facts"] == {"resected": [True, False]}


def test_an_unknown_reading_is_a_usage_error(setup: dict[str, Path]) -> None:
    done = _diff(str(setup["old"]), "reading:no-such=reading", str(setup["cohort"]))
    assert done.returncode == 2
    assert "deciding under reading:no-such=reading failed" in done.stderr


######################## --kb and --facts ########################


def _evaluate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "haip_kg", "evaluate", "--format", "jsonl", "--quiet", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_kb_chooses_the_knowledge_base_of_each_process(setup: dict[str, Path]) -> None:
    statuses = {}
    for side in ("old", "new"):
        done = _evaluate("--kb", str(setup[side]), str(setup["cohort"]))
        assert done.returncode == 0, done.stderr
        statuses[side] = {
            r["patient"]: r["statements"]["S5"]["status"] for r in map(json.loads, done.stdout.splitlines())
        }
    moved = sorted(p for p in MONTHS if statuses["old"][p] != statuses["new"][p])
    assert moved == ["m2.5", "m3"]


def test_kb_refuses_a_folder_without_the_layout(tmp_path: Path) -> None:
    (tmp_path / "ontology").mkdir()
    done = _evaluate("--kb", str(tmp_path), str(CASES / f"{BASE}.json"))
    assert done.returncode == 2
    assert "no shapes/, queries/ folder" in done.stderr


def test_kb_cannot_change_once_read(tmp_path: Path) -> None:
    resources.root()
    with pytest.raises(RuntimeError, match="read already"):
        resources.use_kb(_copy(tmp_path / "kb"))


def _shown_facts() -> list[str]:
    """The slugs of the facts with a display order, read from the ontology with rdflib."""
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    orders = {
        str(graph.value(fact, HAIP.slug)): int(order)
        for fact, order in graph.subject_objects(HAIP.displayOrder)
    }
    return sorted(orders, key=lambda slug: (orders[slug], slug))


def test_facts_are_off_by_default_and_on_with_the_option(setup: dict[str, Path]) -> None:
    plain, with_facts = _evaluate(str(setup["cohort"])), _evaluate("--facts", str(setup["cohort"]))
    records = [json.loads(line) for line in with_facts.stdout.splitlines()]
    assert all("facts" not in json.loads(line) for line in plain.stdout.splitlines())
    for record, line in zip(records, plain.stdout.splitlines(), strict=True):
        facts = record.pop("facts")
        assert list(facts) == _shown_facts()
        assert json.dumps(record, ensure_ascii=False) == line
    by_patient = {r["patient"]: r for r in map(json.loads, with_facts.stdout.splitlines())}
    assert by_patient["m3"]["facts"]["resected"] is True and by_patient["m4"]["facts"]["resected"] is False


def test_facts_are_the_same_on_every_path() -> None:
    """The fast path (memo), the profile path and the per-patient path give the same facts."""
    sheets = [load(CASES / f"{name}.json") for name in (BASE, UNMOVED, "b-histology-unrecorded-r2-resection")]
    cases = list(inputs._from_sheets("test", sheets))
    data = b"".join(engine.ntriples_of(c.triples) for c in cases)
    per_patient = report.records(engine.decide(data, by_profile=False), with_facts=True)
    by_profile = report.records(engine.decide(data), with_facts=True)
    assert {p: r["facts"] for p, r in per_patient.items()} == {p: r["facts"] for p, r in by_profile.items()}
    fast = decide_sheets(sheets)
    assert all("facts" not in r for r in fast)
    from haip_kg import evaluate

    items = list(inputs._from_sheets("test", sheets))
    (batch,) = [evaluate.decide_batch(items, with_facts=True)]
    facts = [o.record["facts"] for o in batch.outcomes]
    assert facts == [per_patient[str(c.patient)]["facts"] for c in cases]
    assert len({json.dumps(f) for f in facts}) == 3
