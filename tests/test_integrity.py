"""Integrity of the knowledge base and the rule files. Each failure message says how to fix it."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

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
TOOLS = Path(__file__).resolve().parent.parent / "tools"


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
    rules = "\n".join(
        p.read_text(encoding="utf-8")
        for p in (*resources.query_dir("rules").glob("*.rq"), *resources.query_dir("generic").glob("*.rq"))
    )
    for kind, prefix in ((HAIP.Interpretation, "haipi:"), (HAIP.Flag, "haipf:"), (HAIP.Conflict, "haipc:")):
        for term in graph.subjects(RDF.type, kind):
            slug = str(graph.value(term, HAIP.slug))
            assert prefix + slug in rules, f"{prefix}{slug} is defined but no rule in queries/rules uses it"


def _abstract_hashes() -> Any:
    """tools/abstract_hashes.py, which normalises texts into 8-word windows and hashes them."""
    spec = importlib.util.spec_from_file_location("abstract_hashes", TOOLS / "abstract_hashes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copied_windows(text: str, digests: frozenset[str]) -> list[str]:
    hashes = _abstract_hashes()
    return [window for window in hashes.windows(text) if hashes.digest(window) in digests]


def test_statements_are_paraphrased_not_quoted() -> None:
    """No eight consecutive words of the abstract in any text the knowledge base says in its own words
    (the publication's title is a citation and is allowed). The abstract is not in the repository: its
    8-word windows are, as SHA-256 digests (tests/data/), so this runs on any clone."""
    hashes = _abstract_hashes()
    digests = hashes.read_digests()
    assert len(digests) > 250, "tests/data/abstract-8-word-windows.sha256 is nearly empty"
    graph = check.knowledge_base()
    checked = 0
    for prop in (HAIP.paraphrase, SKOS.definition, HAIP.rationale, RDFS.label):
        for subject, text in graph.subject_objects(prop):
            copied = _copied_windows(str(text), digests)
            assert not copied, f"{subject} copies the paper's wording: {copied[:2]}"
            checked += 1
    assert checked > 100


def test_the_paraphrase_check_finds_a_copied_window() -> None:
    """Negative control: the windows of a text are found whatever its case and spacing."""
    hashes = _abstract_hashes()
    source = "One, two three four five six seven eight nine."
    digests = frozenset(hashes.digest(w) for w in hashes.windows(source))
    assert _copied_windows("Before: ONE,  two three\nfour five six seven eight after", digests)
    assert not _copied_windows("one, two three four five six seven nine", digests)


def test_the_abstract_digests_are_current() -> None:
    """Where the seed abstract sits next to the checkout, the committed digests are the ones it gives."""
    hashes = _abstract_hashes()
    if not hashes.ABSTRACT.exists():
        pytest.skip("the seed abstract is not next to this checkout (the digests are checked where it is)")
    expected = hashes.digests_file(hashes.ABSTRACT.read_text(encoding="utf-8"))
    assert hashes.DIGESTS.read_text(encoding="utf-8") == expected, (
        "tests/data/abstract-8-word-windows.sha256 is stale: "
        "python tools/abstract_hashes.py > tests/data/abstract-8-word-windows.sha256"
    )


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
