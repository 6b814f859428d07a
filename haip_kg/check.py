"""`haip-kg check`: the knowledge base is consistent (HermiT), complete (kb shapes) and clean (QC queries).

Every QC query runs in both rdflib and Oxigraph: a query whose engines disagree fails the check, so a
defect cannot pass unseen because one engine reads the query differently."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox
from pyshacl import validate as shacl_validate
from rdflib import OWL, RDF, BNode, Graph, Literal, URIRef
from rdflib.namespace import NamespaceManager
from rdflib.query import ResultRow
from rdflib.term import Node

from . import coverage, resources
from .namespaces import HAIP, PREFIXES, SH


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    details: tuple[str, ...] = ()


Row = tuple[str, ...]


def knowledge_base() -> Graph:
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    return graph


def _namespaces() -> NamespaceManager:
    manager = NamespaceManager(Graph(), bind_namespaces="none")
    for prefix, namespace in PREFIXES.items():
        manager.bind(prefix, namespace)
    return manager


def _text(term: Node | None, namespaces: NamespaceManager) -> str:
    """A term as a reader wants it: an IRI compacted (haip:S6), a literal's text, a blank node as []."""
    if term is None:
        return "-"
    if isinstance(term, URIRef):
        return term.n3(namespaces)
    if isinstance(term, BNode):
        return "[]"
    return str(term)


def hermit_consistency(extra: Graph | None = None) -> CheckResult:
    """Load the ontology (plus `extra` triples, e.g. sample patients) into owlready2 and classify it
    with HermiT (needs Java)."""
    import owlready2  # imported here: loading it is slow and only this check needs it

    name = "OWL 2 DL consistency (HermiT via owlready2)"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "haip.nt"
        graph = knowledge_base()
        if extra is not None:
            graph += extra
        graph.remove((None, OWL.imports, None))  # everything imported is already in the graph
        graph.serialize(path, format="nt", encoding="utf-8")
        world = owlready2.World()
        ontology = world.get_ontology(path.as_uri()).load(format="ntriples")
        try:
            with ontology:
                owlready2.sync_reasoner_hermit(world, infer_property_values=False, debug=0)
        except owlready2.OwlReadyInconsistentOntologyError as error:
            return CheckResult(name, False, (f"inconsistent: {error}",))
        except Exception as error:  # the JVM missing or failing is a failed check, not a crash
            return CheckResult(name, False, (f"HermiT could not run: {error}",))
        unsatisfiable = [str(c) for c in world.inconsistent_classes() if c is not owlready2.Nothing]
    return CheckResult(name, not unsatisfiable, tuple(f"unsatisfiable class {c}" for c in unsatisfiable))


def kb_shapes(graph: Graph | None = None) -> CheckResult:
    """The knowledge base (`graph`, default the installed one) against shapes/kb.shapes.ttl: one line per
    problem, "subject property: message", sorted."""
    conforms, report, _text_report = shacl_validate(
        knowledge_base() if graph is None else graph,
        shacl_graph=Graph().parse(resources.kb_shapes_file(), format="turtle"),
        inference="none",
    )
    namespaces = _namespaces()
    details = sorted(
        {
            f"{_text(report.value(r, SH.focusNode), namespaces)} "
            f"{_text(report.value(r, SH.resultPath), namespaces)}: "
            f"{_text(report.value(r, SH.resultMessage), namespaces)}"
            for r in report.subjects(RDF.type, SH.ValidationResult)
        }
    )
    return CheckResult("knowledge-base shapes (shapes/kb.shapes.ttl)", bool(conforms), tuple(details))


def rdflib_rows(query: str, graph: Graph) -> list[Row]:
    """The rows of a SELECT query run by rdflib over `graph`, as text (see _text), sorted."""
    namespaces = _namespaces()
    rows = []
    for row in graph.query(query):
        assert isinstance(row, ResultRow), "a QC query is a SELECT query"
        rows.append(tuple(_text(term, namespaces) for term in row))
    return sorted(rows)


def oxigraph_rows(query: str, store: ox.Store) -> list[Row]:
    """The rows of a SELECT query run by Oxigraph over `store`, as text (see _text), sorted."""
    namespaces = _namespaces()
    solutions = store.query(query)
    assert isinstance(solutions, ox.QuerySolutions), "a QC query is a SELECT query"
    names = [v.value for v in solutions.variables]
    return sorted(tuple(_text(_rdflib(row[name]), namespaces) for name in names) for row in solutions)


def _rdflib(term: ox.NamedNode | ox.BlankNode | ox.Literal | None) -> Node | None:
    if term is None:
        return None
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    return Literal(term.value)


def oxigraph_store(graph: Graph) -> ox.Store:
    store = ox.Store()
    store.load(graph.serialize(format="nt", encoding="utf-8"), format=ox.RdfFormat.N_TRIPLES)
    return store


def qc_queries(graph: Graph | None = None) -> list[CheckResult]:
    """Each QC query (queries/qc/*-violation.rq) over the knowledge base (`graph`, default the installed
    one), in rdflib and in Oxigraph: it passes when both return no row."""
    graph = knowledge_base() if graph is None else graph
    store = oxigraph_store(graph)
    return [qc_query(path, graph, store) for path in resources.qc_files()]


def qc_query(path: Path, graph: Graph, store: ox.Store) -> CheckResult:
    """One QC query over the same knowledge base in rdflib (`graph`) and Oxigraph (`store`): its rows,
    one per line, and whether the engines disagree."""
    text = path.read_text(encoding="utf-8")
    by_rdflib, by_oxigraph = rdflib_rows(text, graph), oxigraph_rows(text, store)
    details = [" ".join(row) for row in sorted(set(by_rdflib) | set(by_oxigraph))]
    if by_rdflib != by_oxigraph:
        details.append(
            f"rdflib and Oxigraph disagree ({len(by_rdflib)} and {len(by_oxigraph)} rows): "
            "rewrite the query so both engines read it alike"
        )
    return CheckResult(f"QC {path.name}", not details, tuple(details))


def authoring_source() -> CheckResult:
    """The authoring source (consensus/) satisfies its schema and the generated knowledge base is what it
    gives. A knowledge base without an authoring source (written in Turtle by hand) passes."""
    from . import authoring

    if not authoring.consensus_dir().is_dir():
        return CheckResult("authoring source (no consensus/ folder: a hand-written knowledge base)", True)
    try:
        problems = authoring.stale()
    except authoring.AuthoringError as error:
        problems = str(error).splitlines()
    return CheckResult(
        "authoring source consensus/ and the generated ontology/statements.ttl", not problems, tuple(problems)
    )


def case_coverage(folder: Path | None, graph: Graph | None = None) -> coverage.Coverage:
    """What the hand-written test cases in `folder` cover (see coverage.py) over the knowledge base
    (`graph`, default the installed one); None or a missing folder: no cases."""
    return coverage.measure(folder, coverage.terms(knowledge_base() if graph is None else graph))


def coverage_check(measured: coverage.Coverage) -> CheckResult:
    """Passes when every case's declared coverage names known slugs and its expected output shows it;
    gaps are warnings (in the coverage table), never a failure."""
    where = "no cases found" if measured.folder is None else f"{measured.cases} case(s) in {measured.folder}"
    return CheckResult(f"test-case coverage ({where})", not measured.errors, measured.errors)


def fact_rules(graph: Graph) -> CheckResult:
    """Every fact the knowledge base declares with case-sheet keys is assessed by exactly one rule, and
    that rule (with the rules it reads: its family) reads every key the fact declares. The rules' reads
    come from their parsed algebra (footprints), never from their text."""
    from . import footprints

    try:
        found = footprints.families()
    except Exception as error:  # a knowledge base the analysis cannot read: say so, do not crash the check
        return CheckResult(
            "fact rules assess the declared facts and read their declared keys", False, (str(error),)
        )
    family_of = {rule: f for f in found.families for rule in f.rules}
    producers: dict[Node, list[tuple[str, str]]] = {}
    for stage in sorted({stage for stage, _name in family_of}):
        for path in resources.rule_files(stage):
            template = footprints.parse(path.read_text(encoding="utf-8")).template
            for fact in {o for _s, p, o in template if p == HAIP.assessedFact and isinstance(o, URIRef)}:
                producers.setdefault(fact, []).append((stage, path.name))
    namespaces = _namespaces()
    problems = []
    for fact in sorted({f for f in graph.subjects(RDF.type, HAIP.Fact) if isinstance(f, URIRef)}):
        declared = {str(graph.value(key, HAIP.keyName) or key) for key in graph.objects(fact, HAIP.inputKey)}
        if not declared:
            continue
        rules = producers.get(fact, [])
        name = _text(fact, namespaces)
        if len(rules) != 1:
            problems.append(
                f"{name}: assessed by {len(rules)} rules ({', '.join(r for _s, r in rules) or 'none'})"
            )
            continue
        family = family_of.get(rules[0])
        if family is None or family.footprint is None:
            continue  # decided per patient: what it reads is not proven, so not compared
        unread = sorted(declared - family.footprint.keys())
        if unread:
            problems.append(
                f"{name}: its rule {rules[0][1]} never reads the declared key(s) {', '.join(unread)}"
            )
    return CheckResult(
        "fact rules assess the declared facts and read their declared keys", not problems, tuple(problems)
    )


def run_all(with_reasoner: bool = True) -> list[CheckResult]:
    graph = knowledge_base()
    results = [authoring_source(), kb_shapes(graph), fact_rules(graph), *qc_queries(graph)]
    if with_reasoner:
        results.insert(0, hermit_consistency())
    return results
