"""Integrity of the knowledge base and the rule files. Each failure message says how to fix it."""

from __future__ import annotations

import re
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import OWL, RDF, RDFS, SKOS, Graph, URIRef
from rdflib.plugins.sparql import prepareQuery

import haip_kg
from haip_kg import check, resources
from haip_kg.namespaces import HAIP, PREFIXES

TURTLE = resources.all_turtle_files()
QUERIES = resources.all_query_files()
ROOT = resources.root()


@pytest.mark.parametrize("path", TURTLE, ids=lambda p: p.name)
def test_turtle_parses(path: Path) -> None:
    Graph().parse(path, format="turtle")


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_query_prepares_in_both_engines(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    prepareQuery(text)  # rdflib
    ox.Store().query(text)  # Oxigraph parses and runs it on an empty store


@pytest.mark.parametrize("path", [*TURTLE, *QUERIES], ids=lambda p: p.name)
def test_prefixes_match_namespaces_py(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    declared = re.findall(r"(?:@prefix|PREFIX)\s+(\w*):\s*<([^>]+)>", text)
    for prefix, iri in declared:
        assert PREFIXES.get(prefix) == iri, (
            f"{path.name}: prefix {prefix}: <{iri}> differs from namespaces.py"
        )


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.name)
def test_query_files_start_with_a_header(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert re.match(r"# (Decides|Checks|Reads):", first), (
        f"{path.name}: start with '# Decides:', '# Checks:' or '# Reads:'"
    )


@pytest.mark.parametrize("result", check.qc_queries(), ids=lambda r: r.name)
def test_qc_query_returns_nothing(result: check.CheckResult) -> None:
    assert result.passed, f"{result.name} found: {result.details}"


def test_knowledge_base_shapes_conform() -> None:
    result = check.kb_shapes()
    assert result.passed, result.details


def test_ontology_versions_equal_the_package_version() -> None:
    for path in resources.ontology_files():
        graph = Graph().parse(path, format="turtle")
        (ontology,) = graph.subjects(RDF.type, OWL.Ontology)
        assert str(graph.value(ontology, OWL.versionInfo)) == haip_kg.__version__, (
            f"bump owl:versionInfo in {path.name}"
        )
        assert str(graph.value(ontology, OWL.versionIRI)).endswith("/" + haip_kg.__version__), path.name
    changelog = (Path(__file__).parent.parent / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {haip_kg.__version__}" in changelog, "add a CHANGELOG.md section for this version"


def test_every_interpretation_flag_and_conflict_is_used_by_a_rule() -> None:
    graph = check.knowledge_base()
    rules = "\n".join(p.read_text(encoding="utf-8") for p in resources.query_dir("rules").glob("*.rq"))
    for kind, prefix in ((HAIP.Interpretation, "haipi:"), (HAIP.Flag, "haipf:"), (HAIP.Conflict, "haipc:")):
        for term in graph.subjects(RDF.type, kind):
            slug = str(graph.value(term, HAIP.slug))
            assert prefix + slug in rules, f"{prefix}{slug} is defined but no rule in queries/rules uses it"


def test_statements_are_paraphrased_not_quoted() -> None:
    """No eight consecutive words of the abstract in any text the knowledge base says in its own words
    (the publication's title is a citation and is allowed)."""
    abstract = ROOT.parent / "shared" / "seed" / "consensus-abstract.txt"
    if not abstract.exists():
        pytest.skip("the seed abstract is not next to this checkout")
    words = abstract.read_text(encoding="utf-8").lower().split()
    shingles = {" ".join(words[i : i + 8]) for i in range(len(words) - 7)}
    graph = check.knowledge_base()
    own_words = [HAIP.paraphrase, SKOS.definition, HAIP.rationale, RDFS.label]
    for prop in own_words:
        for subject, text in graph.subject_objects(prop):
            normalised = " ".join(str(text).lower().split())
            copied = [s for s in shingles if s in normalised]
            assert not copied, f"{subject} copies the paper's wording: {copied[:2]}"


@pytest.fixture(scope="module")
def hermit() -> check.CheckResult:
    return check.hermit_consistency()


def test_ontology_is_consistent_under_hermit(hermit: check.CheckResult) -> None:
    assert hermit.passed, hermit.details


def test_hermit_detects_a_patient_in_disjoint_fact_classes() -> None:
    """Negative control: the consistency check is able to fail."""
    extra = Graph()
    patient = URIRef("https://w3id.org/haip/case/impossible")
    extra.add((patient, RDF.type, HAIP.ColorectalPrimaryPatient))
    extra.add((patient, RDF.type, HAIP.NonColorectalPrimaryPatient))
    assert not check.hermit_consistency(extra).passed


LABEL_READ = re.compile(r"(?:rdfs:label|skos:prefLabel|skos:definition)\s+\?(\w+)")


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_label_read_in_a_query_picks_the_english_one(path: Path) -> None:
    """A label or definition in another language (say "côlon"@fr) must not repeat a reason or a message:
    each variable a query reads rdfs:label, skos:prefLabel or skos:definition into is filtered with
    LANGMATCHES(LANG(?v), "en") (tests/test_kb_source.py adds French labels and compares the outputs)."""
    text = path.read_text(encoding="utf-8")
    for variable in LABEL_READ.findall(text):
        assert f'LANGMATCHES(LANG(?{variable}), "en")' in text, (
            f'{path.name}: filter ?{variable} with LANGMATCHES(LANG(?{variable}), "en")'
        )
