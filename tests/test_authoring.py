"""The authoring source (consensus/) is the one place a statement is written.

- The generated knowledge base is current, and the same source gives the same bytes in any process.
- The JSON Schema the source is checked with is what LinkML generates from the LinkML schema.
- Regenerating today's knowledge base gives the graphs written by hand in 0.8.0 (tests/data/kb-0.8.0),
  apart from the population axioms' OWL 2 RL form and the interpretations' new review triples; and the RL
  form classifies every combination of known and unknown facts exactly as the hand-written axioms did.
- The population axioms are in OWL 2 RL (the hand-written ones were not).
- A broken source is refused with a message naming the file and the place.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rdflib import OWL, RDF, RDFS, BNode, Graph, URIRef
from rdflib.compare import graph_diff, to_isomorphic
from rdflib.namespace import DCTERMS, SKOS
from rdflib.term import Node

from haip_kg import authoring, cli, engine, resources
from haip_kg.namespaces import HAIP

HAND_WRITTEN = Path(__file__).parent / "data" / "kb-0.8.0"
"""ontology/haip.ttl and ontology/statements.ttl as written by hand in 0.8.0 (git 2935a1b)."""


def _statements(graph: Graph) -> dict[str, tuple[URIRef, URIRef]]:
    """Each statement's (and the scope's) slug -> (population, outside population)."""
    return {
        str(graph.value(s, HAIP.slug)): (URIRef(str(p)), URIRef(str(graph.value(s, HAIP.outsidePopulation))))
        for s, p in graph.subject_objects(HAIP.addressesPopulation)
    }


######################## Current and reproducible ########################


def test_the_generated_knowledge_base_is_current() -> None:
    assert authoring.stale() == []


def test_the_build_gives_the_same_bytes_in_another_process() -> None:
    code = "from haip_kg import authoring; import sys; sys.stdout.write(authoring.generate())"
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1] == resources.statements_file().read_text(encoding="utf-8")


def test_the_json_schema_is_what_linkml_generates() -> None:
    from linkml.generators.jsonschemagen import JsonSchemaGenerator

    folder = Path(authoring.__file__).parent / "schema"
    generated = json.loads(JsonSchemaGenerator(str(folder / "consensus.linkml.yaml")).serialize())
    committed = json.loads((folder / "consensus.schema.json").read_text(encoding="utf-8"))
    assert generated == committed, (
        "regenerate: cd haip_kg/schema && gen-json-schema consensus.linkml.yaml > consensus.schema.json"
    )


######################## Today's knowledge base, regenerated ########################


def _hand_written() -> Graph:
    graph = Graph()
    for name in ("haip.ttl", "statements.ttl"):
        graph.parse(HAND_WRITTEN / name, format="turtle")
    return graph


WINDOW = URIRef("https://w3id.org/haip/interpretation/resected-adjuvant-window")
WORDING = {(WINDOW, RDFS.label), (WINDOW, SKOS.definition)}
"""The one change of wording: the adjuvant-window interpretation's text now follows its parameter
("three months" became "3 months")."""


def _comparable(graph: Graph, subjects: set[Node]) -> Graph:
    """The triples about `subjects` (and the clause literals below them), without what the RL form and the
    move of the classes into the generated module change: population axioms (owl:equivalentClass and the
    class expressions), rdfs:isDefinedBy, the interpretations' review triples and parameters, and WORDING."""
    kept = Graph()
    literal = HAIP.Literal
    for s, p, o in graph:
        below = isinstance(s, BNode) and (s, RDF.type, literal) in graph
        if not (s in subjects or below):
            continue
        if (
            p in (OWL.equivalentClass, RDFS.isDefinedBy, HAIP.reviewState, HAIP.reviewedBy)
            or (s, p) in WORDING
        ):
            continue
        if p == DCTERMS.date and (s, RDF.type, HAIP.Interpretation) in graph:
            continue
        kept.add((s, p, o))
    return kept


def test_regenerating_gives_the_hand_written_graphs_apart_from_the_rl_form() -> None:
    generated = Graph().parse(resources.statements_file(), format="turtle")
    hand = _hand_written()
    new_terms = {HAIP.Parameter, HAIP.Reading, HAIP.ReadingProfile}
    named = {
        s
        for s in generated.subjects()
        if isinstance(s, URIRef) and not any((s, RDF.type, t) in generated for t in new_terms)
    }
    # the ontology header carries the version, which moves with every release
    named.discard(URIRef("https://w3id.org/haip/statements"))
    assert "within 3 months" in str(generated.value(WINDOW, RDFS.label))
    assert "within three months" in str(hand.value(WINDOW, RDFS.label))
    old, new = to_isomorphic(_comparable(hand, named)), to_isomorphic(_comparable(generated, named))
    _both, only_old, only_new = graph_diff(old, new)
    assert not list(only_old) and not list(only_new), (
        sorted(map(str, only_old))[:10],
        sorted(map(str, only_new))[:10],
    )
    # nothing the hand-written statements module said is lost, apart from one helper class
    hand_statements = Graph().parse(HAND_WRITTEN / "statements.ttl", format="turtle")
    moved_to_tbox = {
        HAIP.shortCitation,
        HAIP.statementOrder,
        HAIP.Applies,
        HAIP.NotApplicable,
        HAIP.Undetermined,
    }
    lost = {s for s in hand_statements.subjects() if isinstance(s, URIRef)} - named - moved_to_tbox
    assert lost == {URIRef("https://w3id.org/haip/statements")}


def _signatures(kb: Graph) -> list[frozenset[str]]:
    """Every combination of true / false / unknown over the facts the populations are built from."""
    facts = sorted(
        (kb.value(f, HAIP.positiveClass), kb.value(f, HAIP.negativeClass))
        for f in kb.subjects(RDF.type, HAIP.Fact)
        if kb.value(f, HAIP.positiveClass) is not None
    )
    assert len(facts) == 8
    choices = [((str(pos),), (str(neg),), ()) for pos, neg in facts]
    return [frozenset(c for part in combo for c in part) for combo in itertools.product(*choices)]


def _memberships(tbox: list[Any], signatures: list[frozenset[str]], populations: dict[str, Any]) -> list[Any]:
    import reasonable

    reasoner = reasonable.PyReasoner()
    reasoner.from_graph(tbox)
    individuals = [URIRef(f"urn:test:combination:{i}") for i in range(len(signatures))]
    reasoner.from_graph(
        [(ind, RDF.type, URIRef(c)) for ind, sig in zip(individuals, signatures, strict=True) for c in sig]
    )
    wanted = {c for pair in populations.values() for c in pair}
    types: dict[Node, set[Node]] = {ind: set() for ind in individuals}
    for s, p, o in reasoner.reason():
        if p == RDF.type and s in types and o in wanted:
            types[s].add(o)
    return [
        {
            slug: (inside in types[ind], outside in types[ind])
            for slug, (inside, outside) in populations.items()
        }
        for ind in individuals
    ]


def test_the_rl_form_classifies_every_combination_of_facts_as_the_hand_written_axioms() -> None:
    """All 3^8 combinations of the eight population facts being true, false or unknown: the generated
    axioms (as the engine gives them to the reasoner) put each into the same populations and outside
    populations as the 0.8.0 equivalences to unions did."""
    hand = _hand_written()
    populations = _statements(hand)
    assert set(populations) == {"S1", "S2", "S3a", "S3b", "S4", "S5", "scope"}
    assert populations == _statements(Graph().parse(resources.statements_file(), format="turtle"))
    signatures = _signatures(hand)
    old = _memberships(list(hand), signatures, populations)
    new = _memberships(list(engine.tbox_axioms()), signatures, populations)
    assert new == old
    # and the combinations reach every status of every statement (the comparison is not vacuous)
    for slug in populations:
        assert {m[slug] for m in new} == {(True, False), (False, True), (False, False)}, slug


def _rl_violations(graph: Graph) -> list[str]:
    """Population axioms outside OWL 2 RL: a union (at any depth) in an equivalence, or as a superclass."""

    def has_union(node: Node) -> bool:
        if isinstance(node, URIRef):
            return False
        if graph.value(node, OWL.unionOf) is not None:
            return True
        members = graph.value(node, OWL.intersectionOf)
        return members is not None and any(has_union(m) for m in graph.items(members))

    found = [
        f"{s} owl:equivalentClass a union"
        for s, o in graph.subject_objects(OWL.equivalentClass)
        if has_union(o)
    ]
    found += [
        f"{s} rdfs:subClassOf a union" for s, o in graph.subject_objects(RDFS.subClassOf) if has_union(o)
    ]
    return found


def test_the_population_axioms_are_in_owl2_rl_and_the_hand_written_ones_were_not() -> None:
    assert _rl_violations(Graph().parse(resources.statements_file(), format="turtle")) == []
    assert len(_rl_violations(_hand_written())) == 7  # the outside populations and the live-option classes


######################## A broken source is refused, saying where ########################


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    for part in ("ontology", "shapes", "queries", "consensus"):
        shutil.copytree(resources.root() / part, root / part)
    return root


def _edit(path: Path, change: Any) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")


BROKEN = {
    "statement without a definition": (
        "statements/S5.yaml",
        lambda d: d.pop("definition"),
        "statements/S5.yaml: (top): 'definition' is a required property",
    ),
    "a misspelt field": (
        "statements/S5.yaml",
        lambda d: d.update(paraphrse=d["paraphrase"]),
        "statements/S5.yaml: (top): Additional properties are not allowed ('paraphrse' was unexpected)",
    ),
    "a strength out of range": (
        "statements/S4.yaml",
        lambda d: d["strength"].update(rank=9),
        "statements/S4.yaml: strength/rank: 9 is greater than the maximum of 4",
    ),
    "an unknown review state": (
        "statements/S5.yaml",
        lambda d: d["interpretations"][0]["status"].update(state="agreed"),
        "statements/S5.yaml: interpretations/0/status/state: 'agreed' is not one of",
    ),
    "a clause over an unknown fact": (
        "statements/S5.yaml",
        lambda d: d["own_clauses"][0].update(any_of=["resectd"]),
        "clause literal 'resectd': unknown fact 'resectd'",
    ),
    "a clause that does not exist": (
        "statements/S3a.yaml",
        lambda d: d["clauses"].append("no-such-clause"),
        "unknown clause 'no-such-clause'",
    ),
    "a reading's value without the text its parameter has": (
        "statements/S5.yaml",
        lambda d: next(i for i in d["interpretations"] if i["id"] == "resected-adjuvant-window")[
            "alternatives"
        ][0]["values"][0].pop("text"),
        "its value of adjuvant-window gives unit, value; the parameter has text, unit, value",
    ),
    "an interpretation minting a reading's IRI": (
        "statements/S5.yaml",
        lambda d: d["interpretations"].append(
            {**d["interpretations"][0], "id": "resected-adjuvant-window--12-weeks"}
        ),
        "resected-adjuvant-window--12-weeks is declared twice",
    ),
    "an interpretation of an unknown statement": (
        "statements/S5.yaml",
        lambda d: d["interpretations"][0].update(interprets=["S9"]),
        "unknown statement 'S9'",
    ),
}


def _misspelt_profile(document: dict[str, Any]) -> None:
    document["reading_profiles"][1]["readings"][0] = "unresectable-qualified-assessor=any-asessor"


def test_build_refuses_a_profile_naming_an_undeclared_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(tmp_path)
    _edit(root / "consensus" / "kb.yaml", _misspelt_profile)
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["build"])
    assert result.exit_code == 2, result.output
    assert (
        "reading profile permissive: no reading 'unresectable-qualified-assessor=any-asessor'"
        in result.output
    )


@pytest.mark.parametrize("name", BROKEN)
def test_build_refuses_a_broken_source_naming_the_place(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, change, message = BROKEN[name]
    root = _copy(tmp_path)
    _edit(root / "consensus" / file, change)
    before = (root / "ontology" / "statements.ttl").read_bytes()
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["build"])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert (root / "ontology" / "statements.ttl").read_bytes() == before  # nothing written
    checked = CliRunner().invoke(cli.main, ["check", "--no-reasoner"])
    assert checked.exit_code == 1 and message in checked.output, checked.output


def test_check_fails_when_the_generated_file_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(tmp_path)
    _edit(root / "consensus" / "statements" / "S5.yaml", lambda d: d.update(paraphrase="Changed in review."))
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["check", "--no-reasoner"])
    assert result.exit_code == 1 and "ontology/statements.ttl is stale" in result.output, result.output
    assert CliRunner().invoke(cli.main, ["build", "--check"]).exit_code == 1
    assert CliRunner().invoke(cli.main, ["build"]).exit_code == 0
    assert "Changed in review." in (root / "ontology" / "statements.ttl").read_text(encoding="utf-8")
    assert CliRunner().invoke(cli.main, ["build", "--check"]).exit_code == 0


######################## Each declared fact is what its rule assesses ########################


def _add_key(document: dict[str, Any]) -> None:
    (fact,) = [f for f in document["facts"] if f["id"] == "adenocarcinoma"]
    fact["input_keys"].append("ecog")


def _new_fact(document: dict[str, Any]) -> None:
    document["facts"].append(
        {
            "id": "fit-for-pump",
            "label": "fit for a pump",
            "definition": "Added for a test.",
            "input_keys": ["ecog"],
        }
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            _add_key,
            "haipx:adenocarcinoma: its rule fact-adenocarcinoma.rq never reads the declared key(s) ecog",
        ),
        (_new_fact, "haipx:fit-for-pump: assessed by 0 rules (none)"),
    ],
    ids=["a key its rule does not read", "a fact no rule assesses"],
)
def test_check_fails_when_a_fact_rule_does_not_match_its_declaration(
    change: Any, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _copy(tmp_path)
    _edit(root / "consensus" / "kb.yaml", change)
    authoring.build(root)
    monkeypatch.setattr(resources, "root", lambda: root)
    result = CliRunner().invoke(cli.main, ["check", "--no-reasoner"])
    assert result.exit_code == 1, result.output
    assert "FAIL  fact rules assess the declared facts and read their declared keys" in result.output
    assert f"      {message}" in result.output, result.output
