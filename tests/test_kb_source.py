"""The knowledge base is the single source of what the outputs hold.

- Statements, their order and which of them report `met` come from the knowledge base: a statement added
  in Turtle reaches every output format, in the order the knowledge base gives; an incomplete one is
  refused by `haip-kg check` with a message naming it and what it lacks.
- Every QC query finds the defect it looks for, with the same rows in rdflib and in Oxigraph.
- Labels and definitions are chosen by language: French ones added to the knowledge base change nothing.

A changed knowledge base is a copy under tmp_path: `haip-kg check` reads its files afresh (in this
process, with resources.root pointed at the copy); decisions cache the knowledge base per process, so they
run in a fresh process (LAUNCHER) pointed at the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import CASES
from rdflib import RDFS, SKOS, Graph, Literal, URIRef

from haip_kg import authoring, check, cli, resources
from haip_kg.namespaces import HAIP, PREFIXES

FORMATS = ("json", "jsonl", "markdown", "turtle")

LAUNCHER = """
import json, sys
from pathlib import Path
from haip_kg import resources
resources.root = lambda: Path(sys.argv[1])
from haip_kg.cli import main
codes = {}
for fmt in json.loads(sys.argv[4]):
    try:
        main(["evaluate", sys.argv[2], "--format", fmt, "--quiet", "-o", str(Path(sys.argv[3]) / fmt)],
             prog_name="haip-kg", standalone_mode=False)
    except SystemExit as stop:
        codes[fmt] = stop.code
print(json.dumps(codes))
"""
"""Runs `haip-kg evaluate CASES --format F -o OUT/F` for each format F with the data files under ROOT:
python -c LAUNCHER ROOT CASES OUT FORMATS-AS-JSON. Prints the exit codes by format."""


def _copy(
    tmp_path: Path,
    turtle: str = "",
    edit: Callable[[Path], None] | None = None,
) -> Path:
    """A copy of the data files and the authoring source: `edit` changes the YAML under consensus/ and the
    knowledge base is built from it (`haip-kg build`). With `turtle`, the copy becomes a knowledge base
    written by hand: the turtle is appended to ontology/statements.ttl (its prefixes apply) and there is no
    authoring source."""
    root = tmp_path / "data"
    for part in ("ontology", "shapes", "queries", "consensus"):
        shutil.copytree(resources.root() / part, root / part)
    if edit is not None:
        edit(root / "consensus")
    authoring.build(root)
    if turtle:
        with (root / "ontology" / "statements.ttl").open("a", encoding="utf-8") as out:
            out.write("\n" + turtle)
        shutil.rmtree(root / "consensus")
    return root


def _yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _write_yaml(path: Path, document: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _evaluate(root: Path, out: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, str]:
    """The output of `haip-kg evaluate tests/cases` in each format, decided with the data files under root."""
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(root), str(CASES), str(out), json.dumps(formats)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == dict.fromkeys(formats, 0), done.stderr
    return {fmt: (out / fmt).read_text(encoding="utf-8") for fmt in formats}


######################## A statement added through the authoring source ########################

S6 = """
haip:S6 a haip:Requirement, owl:NamedIndividual ;
    rdfs:label "S6"@en ; haip:slug "S6" ; haip:statementNumber 6 ; haip:statementOrder 0 ;
    skos:definition "A requirement added for a test: HAIP is delivered only by a complete programme."@en ;
    haip:paraphrase "Test requirement: HAIP only within a complete programme."@en ;
    haip:strengthWord "should" ; haip:strengthRank 4 ; haip:direction "for" ;
    haip:fromSource haip:Karanicolas2014 ; prov:wasDerivedFrom haip:Karanicolas2014 ;
    haip:addressesPopulation haip:HaipCandidatePatient ; haip:outsidePopulation haip:NonHaipCandidatePatient ;
    haip:metFact haipx:programme-complete ;
    haip:hasClause haip:clause-scope-site, haip:clause-scope-histology, haip:clause-scope-liver,
        haip:clause-not-excluded, haip:clause-unresectable-or-resected ;
    rdfs:isDefinedBy <https://w3id.org/haip/statements> .
"""
"""A complete statement written in Turtle (for the knowledge-base checks of a hand-made knowledge base)."""

CITATION = "Karanicolas PJ et al. Curr Oncol 2014;21(1):e129-e136"


def _add_s6(consensus: Path) -> None:
    """S6, authored in YAML only: a requirement with S2's population and met fact, placed first (order 0);
    S1 and S5 swap places in the order, and the source's short citation changes."""
    s2 = _yaml(consensus / "statements" / "S2.yaml")
    s6 = {
        **{k: v for k, v in s2.items() if k != "interpretations"},
        "id": "S6",
        "number": 6,
        "order": 0,
        "label": "S6",
        "definition": "A requirement added for a test: HAIP is delivered only by a complete programme.",
        "paraphrase": "Test requirement: HAIP only within a complete programme.",
    }
    _write_yaml(consensus / "statements" / "S6.yaml", s6)
    for name, order in (("S1", 6), ("S5", 1)):
        statement = _yaml(consensus / "statements" / f"{name}.yaml")
        _write_yaml(consensus / "statements" / f"{name}.yaml", {**statement, "order": order})
    kb = _yaml(consensus / "kb.yaml")
    assert kb["sources"][0]["short_citation"] == CITATION
    kb["sources"][0]["short_citation"] = "cited as the test copy says"
    _write_yaml(consensus / "kb.yaml", kb)


ORDER = ["S6", "S5", "S2", "S3a", "S3b", "S4", "S1"]


@pytest.fixture(scope="module")
def with_s6(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every format of the test corpus decided with S6 added and CHANGES made."""
    tmp = tmp_path_factory.mktemp("s6")
    return _evaluate(_copy(tmp, edit=_add_s6), tmp / "out")


def _decided(text: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, text.splitlines()) if "errors" not in r]


def test_a_complete_statement_is_checked_clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = _copy(tmp_path, edit=_add_s6)
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["check", "--no-reasoner"])
    assert result.exit_code == 0 and "FAIL" not in result.output, result.output


def test_an_added_statement_reaches_json_in_the_knowledge_base_order(
    with_s6: dict[str, str], decided_cases: dict[str, dict[str, Any]]
) -> None:
    records = _decided(with_s6["jsonl"])
    assert len(records) == len([r for r in decided_cases.values() if "errors" not in r]) >= 40
    assert json.loads(with_s6["json"]) == [json.loads(line) for line in with_s6["jsonl"].splitlines()]
    for record in records:
        assert list(record["statements"]) == ORDER, record["patient"]
        s6, s2 = record["statements"]["S6"], record["statements"]["S2"]
        # S6 has S2's population and met fact: the same decision, met reported alike
        assert (s6["status"], s6.get("met", "absent"), s6["reasons"]) == (
            s2["status"],
            s2.get("met", "absent"),
            s2["reasons"],
        ), record["patient"]
        # everything else is what the knowledge base without S6 gives, in the new order
        unchanged = decided_cases[record["patient"]]
        expected = {
            **unchanged,
            "statements": {s: unchanged["statements"][s] for s in ORDER[1:]},
            "consensus": {**unchanged["consensus"], "citation": "cited as the test copy says"},
        }
        del record["statements"]["S6"]
        assert json.dumps(record) == json.dumps(expected), record["patient"]


def test_an_added_statement_reports_met_as_its_kind_says(with_s6: dict[str, str]) -> None:
    mets = [r["statements"]["S6"].get("met", "absent") for r in _decided(with_s6["jsonl"])]
    assert {True, False, None, "absent"} <= set(mets)  # met reported exactly when not not-applicable
    for record in _decided(with_s6["jsonl"]):
        for name in ("S3a", "S3b", "S4", "S5"):
            assert "met" not in record["statements"][name]


def test_an_added_statement_reaches_markdown_and_turtle(with_s6: dict[str, str]) -> None:
    decided = len(_decided(with_s6["jsonl"]))
    rows = [line.split(" | ")[0] for line in with_s6["markdown"].splitlines() if line.startswith("| S")]
    assert rows == ["| " + name for name in ORDER] * decided
    graph = Graph().parse(data=with_s6["turtle"], format="turtle")
    assert len(set(graph.subjects(HAIP.aboutStatement, HAIP.S6))) == decided


INCOMPLETE = {
    "no-population": (
        S6.replace("haip:addressesPopulation haip:HaipCandidatePatient ;", "").replace(
            "haip:outsidePopulation haip:NonHaipCandidatePatient ;", ""
        ),
        "knowledge-base shapes",
        "haip:S6 haip:addressesPopulation: A statement needs exactly one population class",
    ),
    "population-no-fact-decides": (
        S6.replace("haip:HaipCandidatePatient", "haip:S6Population")
        + 'haip:S6Population a owl:Class ; rdfs:label "S6 population"@en ; '
        'skos:definition "Whom S6 is about."@en ; rdfs:isDefinedBy <https://w3id.org/haip/statements> .\n',
        "QC statement-population-undecided-violation.rq",
        "haip:S6 its population rests on <https://w3id.org/haip/S6Population>",
    ),
    "no-order": (
        S6.replace("haip:statementOrder 0 ;", ""),
        "knowledge-base shapes",
        "haip:S6 haip:statementOrder: A statement needs its position in the output",
    ),
    "order-taken": (
        S6.replace("haip:statementOrder 0 ;", "haip:statementOrder 4 ;"),
        "QC statement-duplicate-violation.rq",
        "haip:S3b haip:S6 share the statement order 4",
    ),
    "requirement-without-met-fact": (
        S6.replace("haip:metFact haipx:programme-complete ;", ""),
        "knowledge-base shapes",
        "haip:S6 haip:metFact: A requirement needs the fact that says whether it is met.",
    ),
}


@pytest.mark.parametrize("name", INCOMPLETE)
def test_check_refuses_an_incomplete_statement_naming_what_is_missing(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    turtle, failing, message = INCOMPLETE[name]
    root = _copy(tmp_path, turtle)
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["check", "--no-reasoner"])
    assert result.exit_code == 1, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(f"FAIL  {failing}"), result.output
    assert f"      {message}" in result.output, result.output


def test_evaluate_never_drops_a_statement_it_cannot_decide(tmp_path: Path) -> None:
    """The knowledge base check is a separate command: evaluating with an undecidable statement stops
    with a message naming it rather than leaving it out of the records."""
    root = _copy(tmp_path, INCOMPLETE["no-population"][0])
    (tmp_path / "out").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(root), str(CASES), str(tmp_path / "out"), '["jsonl"]'],
        capture_output=True,
        text=True,
        check=False,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {"jsonl": 2}, done.stderr[-2000:]
    assert "S6" in done.stderr and "haip-kg check" in done.stderr and "Traceback" not in done.stderr


######################## Every QC query finds its defect, in both engines ########################

DEFECTS = {
    "fact-without-classes-violation.rq": (
        "haip:clause-injected haip:hasLiteral [ haip:literalFact haipx:injected ; haip:negated false ] .",
        "haipx:injected",
    ),
    "interpretation-without-statement-violation.rq": (
        "haipi:injected a haip:Interpretation ; haip:interprets haip:DecisionPolicyV1 .",
        "haipi:injected",
    ),
    "statement-duplicate-violation.rq": ('haip:S4 haip:slug "S3a" .', "haip:S3a haip:S4 share the slug S3a"),
    "statement-population-undecided-violation.rq": (
        "haip:S5 haip:outsidePopulation haip:InjectedClass .",
        "haip:S5 its outside population rests on <https://w3id.org/haip/InjectedClass>",
    ),
    "term-without-definition-violation.rq": (
        'haip:Injected rdfs:isDefinedBy <https://w3id.org/haip/ontology> ; rdfs:label "injecté"@fr ; '
        'skos:definition "Injected."@en .',
        "haip:Injected no rdfs:label@en",
    ),
    "undefined-haip-term-violation.rq": ('haip:S1 haip:injectedProperty "x" .', "haip:injectedProperty"),
}
"""For each QC query: Turtle that adds the defect it looks for, and the start of the row it must return."""

_TURTLE_PREFIXES = "".join(f"@prefix {prefix}: <{iri}> .\n" for prefix, iri in PREFIXES.items())


@pytest.fixture(scope="module")
def knowledge_base() -> Graph:
    return check.knowledge_base()


@pytest.mark.parametrize("path", resources.qc_files(), ids=lambda p: p.name)
def test_each_qc_query_finds_its_injected_defect_in_rdflib_and_oxigraph(
    path: Path, knowledge_base: Graph
) -> None:
    if path.name not in DEFECTS:
        pytest.fail(f"{path.name} has no injected-defect case: add one to DEFECTS in {Path(__file__).name}")
    turtle, expected = DEFECTS[path.name]
    graph = Graph()
    graph += knowledge_base
    graph.parse(data=_TURTLE_PREFIXES + turtle, format="turtle")
    query = path.read_text(encoding="utf-8")
    by_rdflib = check.rdflib_rows(query, graph)
    by_oxigraph = check.oxigraph_rows(query, check.oxigraph_store(graph))
    assert by_rdflib == by_oxigraph, f"rdflib {by_rdflib} != Oxigraph {by_oxigraph}"
    found = [" ".join(row) for row in by_rdflib]
    assert any(row.startswith(expected) for row in found), found
    # and `haip-kg check` fails on it, with the engines agreeing
    result = check.qc_query(path, graph, check.oxigraph_store(graph))
    assert not result.passed and result.details == tuple(found), result.details


######################## Labels are chosen by language ########################


def _french(root: Path) -> None:
    """A French label and definition for every term of the knowledge base with an English one."""
    graph = Graph()
    for path in sorted((root / "ontology").glob("*.ttl")):
        graph.parse(path, format="turtle")
    french = Graph()
    for prop in (RDFS.label, SKOS.definition, SKOS.prefLabel):
        for term, text in graph.subject_objects(prop):
            if isinstance(text, Literal) and text.language == "en" and isinstance(term, URIRef):
                french.add((term, prop, Literal(f"{text} (fr) côlon", lang="fr")))
    assert len(french) > 400
    with (root / "ontology" / "statements.ttl").open("a", encoding="utf-8") as out:
        out.write("\n" + french.serialize(format="nt"))


def test_french_labels_change_no_output(tmp_path: Path) -> None:
    english = _evaluate(_copy(tmp_path / "en"), tmp_path / "en" / "out", ("jsonl", "markdown", "turtle"))
    root = _copy(tmp_path / "fr")
    _french(root)
    both = _evaluate(root, tmp_path / "fr" / "out", ("jsonl", "markdown", "turtle"))
    assert "côlon" not in both["jsonl"]
    for fmt, text in english.items():
        assert both[fmt] == text, fmt
