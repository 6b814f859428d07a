"""Run the decision rules (queries/generic, queries/rules) and the OWL reasoning step over patients.

The clinical logic lives in the rule files and the ontology; this module only runs the stages in order
on a backend (the embedded in-memory Oxigraph store, or a SPARQL 1.1 store, see endpoint.py):
record -> fact -> classify -> OWL RL reasoning -> status -> qualify -> explain -> verdict -> condition
-> flag -> score.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Protocol

import orjson
import pyoxigraph as ox
import reasonable
from rdflib import OWL, RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.plugins.serializers.nt import _quoteLiteral
from rdflib.term import Node

from . import readings, resources
from .namespaces import HAIP

STAGES_BEFORE_REASONING = ("record", "fact", "classify")
PROFILE_STAGES = ("status", "qualify", "explain", "verdict", "condition")
"""The stages that read nothing of a patient but its classes and its fact assessments' truth values (its
profile): decided once per profile and copied to every patient with that profile (see decide)."""
PATIENT_STAGES = ("flag", "score")
"""The stages after reasoning that read the patient's own data."""
STAGES_AFTER_REASONING = PROFILE_STAGES + PATIENT_STAGES


def to_ox(term: Node) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    if isinstance(term, URIRef):
        return ox.NamedNode(str(term))
    if isinstance(term, BNode):
        return ox.BlankNode(str(term))
    if isinstance(term, Literal):
        if term.language:
            return ox.Literal(str(term), language=term.language)
        if term.datatype is not None:
            return ox.Literal(str(term), datatype=ox.NamedNode(str(term.datatype)))
        return ox.Literal(str(term))
    raise TypeError(f"not an RDF term: {term!r}")


@lru_cache(maxsize=65536)
def from_ox(term: ox.NamedNode | ox.BlankNode | ox.Literal) -> Node:
    if isinstance(term, ox.NamedNode):
        return URIRef(term.value)
    if isinstance(term, ox.BlankNode):
        return BNode(term.value)
    if term.language:
        return Literal(term.value, lang=term.language)
    return Literal(term.value, datatype=URIRef(term.datatype.value))


def quad(s: Node, p: Node, o: Node) -> ox.Quad:
    """An Oxigraph quad in the default graph from rdflib terms."""
    return ox.Quad(to_ox(s), to_ox(p), to_ox(o))  # type: ignore[arg-type]


def plain_rows(results_json: bytes) -> list[dict[str, Any]]:
    """The rows of a SPARQL JSON results document as plain values by variable name: an IRI or a blank
    node as its string, a boolean or integer literal as a Python bool or int, another literal as its
    lexical form, an unbound variable as None."""
    document = orjson.loads(results_json)
    names = document["head"]["vars"]
    return [
        {name: _plain(row[name]) if name in row else None for name in names}
        for row in document["results"]["bindings"]
    ]


_XSD = "http://www.w3.org/2001/XMLSchema#"


def _plain(binding: dict[str, str]) -> Any:
    datatype = binding.get("datatype")
    if datatype == _XSD + "boolean":
        return binding["value"] == "true"
    if datatype == _XSD + "integer":
        return int(binding["value"])
    return binding["value"]


def ntriples(store: ox.Store) -> bytes:
    return store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph()) or b""


def ntriples_of(triples: Iterable[tuple[Node, Node, Node]]) -> bytes:
    """rdflib triples as an N-Triples document (terms written by rdflib's N-Triples serializer)."""
    return "".join(f"{_nt(s)} {_nt(p)} {_nt(o)} .\n" for s, p, o in triples).encode("utf-8")


def nt_term(term: Node) -> bytes:
    """One term as written in N-Triples by ntriples_of."""
    return _nt(term).encode("utf-8")


@lru_cache(maxsize=65536)
def _nt(term: Node) -> str:
    return _quoteLiteral(term) if isinstance(term, Literal) else term.n3()


@cache
def knowledge_base_ntriples() -> bytes:
    """The ontology, statements and case-sheet mapping with their OWL 2 RL closure, as N-Triples.

    Reasoning over the knowledge base happens once per process (the rules can then rely on inferred
    class memberships such as CT chest being a chest staging study); inferred triples about blank nodes
    are left out.
    """
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    readings.apply(graph)
    reasoner = reasonable.PyReasoner()
    reasoner.from_graph(graph)
    store = ox.Store()
    store.extend(quad(s, p, o) for s, p, o in graph)
    store.extend(
        quad(s, p, o)
        for s, p, o in reasoner.reason()
        if isinstance(s, URIRef) and isinstance(o, URIRef | Literal)
    )
    return ntriples(store)


def _owl_rl(abox: list[tuple[Node, Node, Node]]) -> list[tuple[Node, Node, Node]]:
    """The OWL 2 RL closure of the TBox plus `abox` (reasonable). The reasoner object never outlives
    this call: it may only be dropped by the thread that made it, and a profiler sampling this frame
    (Dask's) could otherwise keep it alive."""
    reasoner = reasonable.PyReasoner()
    try:
        reasoner.from_graph(list(tbox_axioms()))
        reasoner.from_graph(abox)
        return list(reasoner.reason())
    finally:
        del reasoner


@cache
def tbox_graph() -> Graph:
    """The TBox: the core module, the knowledge base's domain modules and the class axioms of the
    generated statements module (its fact and population classes with the class expressions that define
    them); its individuals stay out."""
    graph = Graph()
    for path in resources.tbox_files():
        graph.parse(path, format="turtle")
    statements = Graph().parse(resources.statements_file(), format="turtle")
    pending = list(statements.subjects(RDF.type, OWL.Class))
    seen: set[Node] = set()
    while pending:
        subject = pending.pop()
        if subject in seen:
            continue
        seen.add(subject)
        for predicate, obj in statements.predicate_objects(subject):
            graph.add((subject, predicate, obj))
            if isinstance(obj, BNode):
                pending.append(obj)
    return graph


_BUILT_IN_ANNOTATIONS = frozenset(
    {RDFS.label, RDFS.comment, RDFS.seeAlso, RDFS.isDefinedBy, OWL.versionInfo, OWL.priorVersion}
)


@cache
def tbox_axioms() -> tuple[tuple[Node, Node, Node], ...]:
    """The TBox without its annotation assertions: the triples whose predicate is an annotation property
    (declared owl:AnnotationProperty, or built in) and has no domain or range axiom. Annotations carry
    no meaning for OWL reasoning (OWL 2 Structural Specification, section 10), and leaving them out
    halves the reasoner's work on every new set of fact classes (46 -> 18 ms here); a test checks that
    the classes entailed are the same with the whole TBox."""
    graph = tbox_graph()
    annotation = set(graph.subjects(RDF.type, OWL.AnnotationProperty)) | _BUILT_IN_ANNOTATIONS
    meaningful = set(graph.subjects(RDFS.domain, None)) | set(graph.subjects(RDFS.range, None))
    dropped = annotation - meaningful
    return tuple(triple for triple in graph if triple[1] not in dropped)


@cache
def rules(stage: str) -> tuple[tuple[str, str], ...]:
    """(file name, query text) of one stage's rule files."""
    return tuple((path.name, path.read_text(encoding="utf-8")) for path in resources.rule_files(stage))


def new_store(data: bytes) -> ox.Store:
    """An in-memory store holding the knowledge base and `data` (N-Triples)."""
    store = ox.Store()
    store.load(knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
    store.load(data, format=ox.RdfFormat.N_TRIPLES)
    return store


class Backend(Protocol):
    """Where the rules run: the embedded Oxigraph store, or a SPARQL 1.1 endpoint (endpoint.py)."""

    def construct(self, query: str) -> bytes:
        """The triples of a CONSTRUCT query, as N-Triples."""
        ...

    def select(self, query: str) -> list[dict[str, Any]]:
        """The rows of a SELECT query as plain values (see plain_rows)."""
        ...

    def add(self, ntriples: bytes) -> None:
        """Add triples (N-Triples) to the data the rules read."""
        ...


class Embedded:
    """The embedded backend: an in-memory Oxigraph store."""

    def __init__(self, store: ox.Store) -> None:
        self.store = store

    # Query results are "unsendable" (they may only be dropped by the thread that made them): each is
    # deleted before its method returns, so that a profiler sampling the frame (Dask's) cannot keep it.

    def construct(self, query: str) -> bytes:
        result = self.store.query(query)
        try:
            assert isinstance(result, ox.QueryTriples), "expected a CONSTRUCT query"
            return result.serialize(format=ox.RdfFormat.N_TRIPLES) or b""
        finally:
            del result

    def select(self, query: str) -> list[dict[str, Any]]:
        result = self.store.query(query)
        try:
            assert isinstance(result, ox.QuerySolutions), "expected a SELECT query"
            return plain_rows(result.serialize(format=ox.QueryResultsFormat.JSON) or b"")
        finally:
            del result

    def add(self, ntriples: bytes) -> None:
        # rule results come from this store's own serializer: no need to check every IRI again
        self.store.load(ntriples, format=ox.RdfFormat.N_TRIPLES, lenient=True)


def run_stage(backend: Backend, stage: str) -> None:
    """Run every CONSTRUCT rule of a stage against the same state, then add all their results."""
    backend.add(b"".join(backend.construct(text) for _name, text in rules(stage)))


@cache
def defined_terms() -> frozenset[str]:
    """The IRIs the TBox defines itself (rdfs:isDefinedBy one of its modules), whatever their namespace:
    the knowledge base's classes, not those of the vocabularies it builds on (owl:Thing, prov:Entity)."""
    return frozenset(str(s) for s in tbox_graph().subjects(RDFS.isDefinedBy, None) if isinstance(s, URIRef))


_CLASSIFIED: dict[frozenset[str], frozenset[str]] = {}
"""The classes the reasoner entails for a patient asserted into a given set of classes (per process)."""


def classify(signatures: Iterable[frozenset[str]]) -> None:
    """OWL 2 RL reasoning (reasonable) over the TBox plus one individual per new set of asserted classes.

    A patient reaches the reasoner only through its fact classes, so patients with the same set of fact
    classes are classified alike; each distinct set is reasoned about once per process.
    """
    new = sorted({sig for sig in signatures if sig not in _CLASSIFIED}, key=sorted)
    if not new:
        return
    individuals = {URIRef(f"urn:haip:signature:{i}"): sig for i, sig in enumerate(new)}
    triples = _owl_rl([(ind, RDF.type, URIRef(c)) for ind, sig in individuals.items() for c in sig])
    entailed: dict[Node, set[str]] = {ind: set() for ind in individuals}
    own = defined_terms()
    for subject, predicate, obj in triples:
        if predicate == RDF.type and subject in entailed and isinstance(obj, URIRef) and str(obj) in own:
            entailed[subject].add(str(obj))
    for ind, sig in individuals.items():
        _CLASSIFIED[sig] = frozenset(entailed[ind] - sig)


def reason(backend: Backend) -> dict[str, frozenset[str]]:
    """Classify every patient into the population classes the statements address (OWL 2 RL over the
    TBox and the patient's fact classes) and add the new rdf:type triples to the backend. Returns each
    patient's classes before reasoning."""
    rows = backend.select(resources.query("engine", "patient-classes"))
    signatures = {row["patient"]: frozenset(row["classes"].split(" ")) for row in rows}
    classify(signatures.values())
    rdf_type = ox.NamedNode(str(RDF.type))
    inferred = [
        ox.Triple(ox.NamedNode(patient), rdf_type, ox.NamedNode(cls))
        for patient, sig in signatures.items()
        for cls in _CLASSIFIED[sig]
    ]
    backend.add(ox.serialize(inferred, format=ox.RdfFormat.N_TRIPLES) or b"")
    return signatures


def decide_on(backend: Backend) -> None:
    """Run every stage of the decision over the patients the backend holds."""
    for stage in STAGES_BEFORE_REASONING:
        run_stage(backend, stage)
    reason(backend)
    for stage in STAGES_AFTER_REASONING:
        run_stage(backend, stage)


Profile = tuple[frozenset[str], frozenset[tuple[str, str, str]]]
"""What the profile stages read of a patient: its classes before reasoning (those after follow from
them), and its fact assessments as (IRI relative to the patient's IRI, fact, truth value)."""

PROFILE_QUERIES = (
    "patient-decisions",
    "statement-decisions",
    "explanation-interpretations",
    "explanation-links",
    "patient-conditions",
)
"""The report queries (queries/report) whose answer about a patient follows from its profile alone."""


@dataclass(frozen=True)
class ProfileDecision:
    """The profile stages' conclusions about one profile's prototype patient."""

    template: str | None
    """As N-Triples, the patient's IRI left as _PATIENT (None: not asked for)."""
    rows: dict[str, list[dict[str, Any]]]
    """The rows of each of PROFILE_QUERIES about the prototype, without their ?patient column."""


_PROFILE_DECISIONS: dict[Profile, ProfileDecision] = {}
"""The profiles decided so far in this process."""

_PATIENT = "\x00"  # a control character: never written raw in N-Triples
_PROTOTYPE = "urn:haip:profile:"
MAX_PROFILES = 100_000


def patient_profiles(backend: Backend, classes: dict[str, frozenset[str]]) -> dict[str, Profile] | None:
    """Each patient's profile; None when a fact assessment's IRI is not under its patient's IRI (the
    profile stages then run per patient)."""
    assessments: dict[str, set[tuple[str, str, str]]] = {patient: set() for patient in classes}
    for row in backend.select(resources.query("engine", "patient-assessments")):
        patient, items = row["patient"], row["items"].split(" ")
        for assessment, fact, value in zip(items[0::3], items[1::3], items[2::3], strict=True):
            if patient not in assessments or not assessment.startswith(patient + "/"):
                return None
            assessments[patient].add((assessment[len(patient) :], fact, value))
    return {patient: (classes[patient], frozenset(assessments[patient])) for patient in classes}


class _Recording(Embedded):
    """An embedded backend that keeps everything the rules add."""

    def __init__(self, store: ox.Store) -> None:
        super().__init__(store)
        self.added: list[bytes] = []

    def add(self, ntriples: bytes) -> None:
        self.added.append(ntriples)
        super().add(ntriples)


def _prototype_quads(prototypes: dict[str, Profile]) -> list[ox.Quad]:
    """One patient per profile (IRI -> profile): its classes, those the reasoner infers from them, and its
    fact assessments with their truth values."""
    rdf_type = ox.NamedNode(str(RDF.type))
    about, fact_of, value_of = (
        ox.NamedNode(str(HAIP[n])) for n in ("aboutPatient", "assessedFact", "truthValue")
    )
    assessment_class = ox.NamedNode(str(HAIP.FactAssessment))
    quads: list[ox.Quad] = []
    for iri, (classes, assessments) in prototypes.items():
        patient = ox.NamedNode(iri)
        quads += [ox.Quad(patient, rdf_type, ox.NamedNode(c)) for c in classes | _CLASSIFIED[classes]]
        for relative, fact, value in assessments:
            a = ox.NamedNode(iri + relative)
            quads += [
                ox.Quad(a, rdf_type, assessment_class),
                ox.Quad(a, about, patient),
                ox.Quad(a, fact_of, ox.NamedNode(fact)),
                ox.Quad(a, value_of, ox.NamedNode(value)),
            ]
    return quads


def decide_profiles(
    profiles: Iterable[Profile], with_triples: bool = True, keep: bool = True
) -> dict[Profile, ProfileDecision]:
    """The decisions about `profiles`: from this process's cache, or made now for the profiles not
    decided yet (or, `with_triples`, decided without their conclusions as triples) by running the profile
    stages over one prototype patient per profile (its classes, inferred classes and fact assessments,
    nothing else) and the knowledge base. With `keep` False the new decisions are not kept in this
    process's cache (the caller keeps what it needs of them). The decisions returned are the caller's to
    keep: emptying the cache (another thread's batch, or a full cache) does not touch them."""
    found: dict[Profile, ProfileDecision] = {}
    profiles = list(profiles)
    for profile in set(profiles):
        known = _PROFILE_DECISIONS.get(profile)
        if known is not None and not (with_triples and known.template is None):
            found[profile] = known
    new = sorted(set(profiles) - found.keys(), key=lambda p: (sorted(p[0]), sorted(p[1])))
    if not new:
        return found
    if len(_PROFILE_DECISIONS) + len(new) > MAX_PROFILES:
        _PROFILE_DECISIONS.clear()  # bounded memory
    classify(classes for classes, _assessments in new)
    prototypes = {f"{_PROTOTYPE}{i:08d}": profile for i, profile in enumerate(new)}
    store = new_store(b"")
    store.extend(_prototype_quads(prototypes))
    backend = _Recording(store)
    for stage in PROFILE_STAGES:
        run_stage(backend, stage)
    results: dict[str, list[ox.Triple]] = {iri: [] for iri in prototypes}
    width = len(_PROTOTYPE) + 8
    for triple in ox.parse(b"".join(backend.added), format=ox.RdfFormat.N_TRIPLES) if with_triples else ():
        subject = triple.subject.value
        if not subject.startswith(_PROTOTYPE):
            raise RuntimeError(f"a profile stage concluded about something other than a patient: {triple}")
        results[subject[:width]].append(triple)
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {
        iri: {q: [] for q in PROFILE_QUERIES} for iri in prototypes
    }
    for name in PROFILE_QUERIES:
        for row in backend.select(resources.query("report", name)):
            iri = row.pop("patient")
            if "assessments" in row:  # relative to the patient, like a profile's assessments
                row["assessments"] = [a.removeprefix(iri) for a in row["assessments"].split(" ")]
            rows[iri][name].append(row)
    for iri, profile in prototypes.items():
        template = None
        if with_triples:
            text = (ox.serialize(results[iri], format=ox.RdfFormat.N_TRIPLES) or b"").decode("utf-8")
            template = text.replace("<" + iri, "<" + _PATIENT)
        if _PROTOTYPE in (template or "") or _PROTOTYPE in repr(rows[iri]):
            raise RuntimeError(f"a profile stage joined two patients: {template}")
        found[profile] = ProfileDecision(template, rows[iri])
        if keep:
            _PROFILE_DECISIONS[profile] = found[profile]
    return found


class Profiled(Embedded):
    """An embedded store whose patients' profile-stage conclusions are those of their profiles
    (`profiles`, by patient IRI; `decisions`, by profile)."""

    def __init__(
        self, store: ox.Store, profiles: dict[str, Profile], decisions: dict[Profile, ProfileDecision]
    ) -> None:
        super().__init__(store)
        self.profiles = profiles
        self.decisions = decisions


def decide(
    data: bytes, store: ox.Store | None = None, by_profile: bool = True, materialize: bool = True
) -> Embedded:
    """An embedded store holding the knowledge base, the patients (`data`, N-Triples) and every decision
    about them. `store`, if given, already holds exactly `data` (the store it was validated in): the
    knowledge base is added to it instead of loading the data again.

    The profile stages (status, qualify, explain, verdict, condition) read nothing of a patient but its
    classes and its fact assessments' truth values, so patients with the same profile get the same
    conclusions: with `by_profile`, they are concluded once per profile (decide_profiles) and the store
    returned is Profiled: each patient's conclusions are copied into it (unless not `materialize`: the
    report can then read them from the profile, see report.records). A test checks that this gives the
    same decisions as running them over every patient.
    """
    if store is None:
        store = new_store(data)
    else:
        store.load(knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
    backend = Embedded(store)
    for stage in STAGES_BEFORE_REASONING:
        run_stage(backend, stage)
    classes = reason(backend)
    profiles = patient_profiles(backend, classes) if by_profile else None
    if profiles is None:
        for stage in PROFILE_STAGES:
            run_stage(backend, stage)
    else:
        decisions = decide_profiles(profiles.values(), with_triples=materialize)
        backend = Profiled(store, profiles, decisions)
        if materialize:
            concluded = "".join(
                (decisions[profile].template or "").replace(_PATIENT, patient)
                for patient, profile in profiles.items()
            )
            backend.add(concluded.encode("utf-8"))
    for stage in PATIENT_STAGES:
        run_stage(backend, stage)
    return backend
