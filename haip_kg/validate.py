"""Check patient data against the input contract (shapes/case.shapes.ttl).

Two SHACL engines with the pySHACL API: pyshacl-turbo (Rust; the default, about 12x faster on a batch of
1,000 case sheets here) and pySHACL (the reference; used for the knowledge-base shapes, and a test checks
that both report the same findings on the shape fixtures).

A batch is validated node by node description (batch_findings): when every shape judges a node by its
own triples alone (shapes_are_local), nodes with the same triples get the same findings, so the engine
validates one stand-in node per description not seen before in this process (about one node in ten
across a cohort: labs, tumours and regimens recur, patients do not). A test checks the findings equal
those of validating the whole batch.

Native RDF is also checked against the vocabulary (vocabulary_findings): the queries in queries/input/
read the ontology and find haip: predicates and classes it does not declare, untyped nodes where its
rdfs:domain or rdfs:range wants a typed one, literals where it wants an IRI and IRIs where it wants a
literal. SHACL Core cannot say this without giving up the locality above (sh:class) or listing every
predicate allowed from other vocabularies (sh:closed). Case sheets skip these checks: the converter
writes only the mapping's declared properties on typed nodes, so they cannot fire there except on a
value a shape already reports.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from functools import cache
from typing import Literal as Literal_

import pyoxigraph as ox
import pyshacl
import pyshacl_turbo
from rdflib import OWL, RDF, RDFS, Graph, Literal, URIRef
from rdflib.term import Node

from . import casesheet, engine, resources
from .namespaces import HAIP, PREFIXES, SH


@dataclass(frozen=True)
class Finding:
    """One SHACL result about a case, in the case sheet's terms."""

    severity: str  # "violation" | "warning" | "info"
    key: str | None
    message: str
    shape: str | None
    constraint: str | None = None
    """What was violated: a SHACL constraint component IRI, or input:<name> for queries/input/<name>.rq."""
    source: Node | None = None
    """The shape (in the shapes graph, often a blank node) that holds the constraint."""
    focus: Node | None = None
    path: Node | None = None
    value: Node | None = None
    """The node, property and value the finding is about (value None for a count)."""


@cache
def shapes_graph() -> Graph:
    return Graph().parse(resources.case_shapes_file(), format="turtle")


@cache
def _key_names() -> dict[Node, str]:
    """Case-sheet key name of each checked property (sh:path of the shapes marked haip:forKey)."""
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    names = {key: str(name) for key, name in graph.subject_objects(HAIP.keyName)}
    shapes = shapes_graph()
    out: dict[Node, str] = {}
    for shape, key in shapes.subject_objects(HAIP.forKey):
        checked = shapes.value(shape, SH.path)
        if checked is not None and key in names:
            out[checked] = names[key]
    return out


_ONE_AT_A_TIME = threading.Lock()
_SEVERITY = {SH.Violation: "violation", SH.Warning: "warning", SH.Info: "info"}


Engine = Literal_["turbo", "pyshacl"]


@cache
def compiled_shapes() -> pyshacl_turbo.CompiledShapes:
    """The case shapes compiled once for pyshacl-turbo (its validate() compiles them on every call)."""
    return pyshacl_turbo.CompiledShapes(shapes_graph(), advanced=True)  # type: ignore[no-untyped-call]


def data_store(documents: Iterable[bytes]) -> ox.Store:
    """Patient data (N-Triples documents) in an Oxigraph store, the fastest input for pyshacl-turbo."""
    store = ox.Store()
    for document in documents:
        if b"_:" in document:  # Store.load renames blank nodes; findings must name the case's own nodes
            store.extend(ox.parse(document, format=ox.RdfFormat.N_TRIPLES, rename_blank_nodes=False))
        else:
            store.load(document, format=ox.RdfFormat.N_TRIPLES)
    return store


@dataclass(frozen=True)
class _Result:
    """One SHACL result about a focus node, before it is put in the case sheet's terms."""

    severity: str
    path: Node | None
    message: str
    shape: str | None
    constraint: str | None = None
    source: Node | None = None
    value: Node | None = None


def _engine_results(data: Graph | ox.Store, engine_name: Engine) -> list[tuple[Node, _Result]]:
    """(focus node, result) of every SHACL result of one engine over `data`. pySHACL (the reference
    engine) takes an rdflib Graph only."""
    if engine_name == "pyshacl" and isinstance(data, ox.Store):
        data = Graph().parse(
            data=data.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph()), format="nt"
        )
    with _ONE_AT_A_TIME:  # the engines' shape caches are not documented as thread-safe
        if engine_name == "turbo":
            shapes = compiled_shapes()
            conforms, report, _text = shapes.validate(data, inference="none", allow_warnings=True)  # type: ignore[no-untyped-call]
        else:
            assert isinstance(data, Graph)
            conforms, report, _text = pyshacl.validate(
                data, shacl_graph=shapes_graph(), inference="none", allow_warnings=True, advanced=True
            )
    if conforms:
        return []
    assert isinstance(report, Graph)
    out = []
    for result in report.subjects(SH.resultSeverity, None):
        focus = report.value(result, SH.focusNode)
        if focus is None:
            continue
        shape = report.value(result, SH.sourceShape)
        message = str(report.value(result, SH.resultMessage) or "does not conform to the input contract")
        value = report.value(result, SH.value)
        if isinstance(value, Literal | URIRef):
            message = f"{message} Got {str(value)!r}."
        severity = _SEVERITY.get(report.value(result, SH.resultSeverity), "violation")  # type: ignore[call-overload]
        path = report.value(result, SH.resultPath)
        component = report.value(result, SH.sourceConstraintComponent)
        named = str(shape) if isinstance(shape, URIRef) else None
        checked = value if isinstance(value, Literal | URIRef) else None
        out.append(
            (
                focus,
                _Result(
                    severity, path, message, named, str(component) if component else None, shape, checked
                ),
            )
        )
    return out


def _finding(result: _Result, focus: Node, node_keys: Mapping[Node, str]) -> Finding:
    """A result in the case sheet's terms: the key of the value checked, also in the message ({key})."""
    key = _key(focus, result.path, node_keys) if result.path is not None else None
    message = result.message.replace("{key}", key or "this value")
    return Finding(
        result.severity,
        key,
        message,
        result.shape,
        result.constraint,
        result.source,
        focus,
        result.path,
        result.value,
    )


def _key(node: Node, path: Node, node_keys: Mapping[Node, str]) -> str:
    """The key of a node's value: for a node the converter made, the case-sheet key path it wrote the
    value from (systemic_lines[1].setting, bilirubin_total.uln, centre_nursing, histology); else the key
    the shapes name for the property (haip:forKey), else the property itself (haip:courseIndex)."""
    node_path = node_keys.get(node)
    if node_path:
        table = casesheet.mapping()
        base = node_path.split("[", 1)[0]
        if base in table.sub_keys:  # an object or an item of an object list: its field
            field = next((k for k in table.sub_keys[base].values() if k.prop == path), None)
            if field is not None:
                return f"{node_path}.{field.name}"
        elif base in table.keys:  # a node of scalar keys: the key of this property on this node
            template = table.keys[base].node
            scalar = next((k for k in table.keys.values() if k.node == template and k.prop == path), None)
            if scalar is not None:
                return scalar.name
    return _key_names().get(path) or _curie(path)


def _curie(term: Node) -> str:
    """A term as prefix:name where a declared prefix fits (haip:courseIndex), else the term itself."""
    text = str(term)
    for prefix, base in sorted(PREFIXES.items(), key=lambda item: -len(item[1])):
        if text.startswith(base) and "/" not in text[len(base) :] and "#" not in text[len(base) :]:
            return f"{prefix}:{text[len(base) :]}"
    return text


def _in_order(found: Mapping[int, list[Finding]]) -> dict[int, list[Finding]]:
    """Each case's findings in a stable order: by key, then message."""
    return {
        i: sorted(f, key=lambda f: (f.key or "", f.message, f.severity, f.shape or "", f.constraint or ""))
        for i, f in found.items()
    }


def findings(
    data: Graph | ox.Store, owner: Mapping[Node, int], node_keys: Mapping[Node, str], engine: Engine = "turbo"
) -> dict[int, list[Finding]]:
    """Validate a batch graph; findings by the index of the case that owns each focus node."""
    out: dict[int, list[Finding]] = defaultdict(list)
    for focus, result in _engine_results(data, engine):
        if focus in owner:
            out[owner[focus]].append(_finding(result, focus, node_keys))
    return _in_order(out)


_VALUE_CONSTRAINTS = frozenset(
    {SH.minCount, SH.maxCount, SH.datatype, SH["in"], SH.minInclusive, SH.maxInclusive}
    | {SH.minExclusive, SH.maxExclusive}
)
_LOCAL_PREDICATES = (
    _VALUE_CONSTRAINTS
    | {SH.targetClass, SH.targetSubjectsOf, SH.property, SH.path}
    | {
        SH.severity,
        SH.message,
        SH.name,
        SH.description,
        SH.order,
        SH.group,
    }
)


def shapes_are_local(shapes: Graph) -> bool:
    """Whether every shape judges a node by the node's own triples alone, whatever its IRI: targets by
    class or by a property the node has, property shapes over plain predicates (not nested in another
    property shape), constraints on the values' count, datatype, range or membership of a fixed list,
    each with its own sh:message (the engines' default messages name the focus node). Nothing else from
    SHACL (no sh:class, sh:node, sh:sparql, path expressions, node-level constraints, targets by name or
    owl:imports)."""
    for subject, predicate, obj in shapes:
        if str(predicate).startswith(str(SH)) and predicate not in _LOCAL_PREDICATES:
            return False
        if predicate == OWL.imports:
            return False
        if predicate == SH.path and not isinstance(obj, URIRef):
            return False
        if predicate == SH.path and (subject, SH.message, None) not in shapes:
            return False
        if predicate == SH.property and (subject, SH.path, None) in shapes:
            return False
        if predicate in _VALUE_CONSTRAINTS and (subject, SH.path, None) not in shapes:
            return False
    return True


def prepare() -> None:
    """Read and compile the case shapes once (before forking workers, so they share the work)."""
    compiled_shapes()
    _case_shapes_are_local()
    _read_predicates()


@cache
def _case_shapes_are_local() -> bool:
    return shapes_are_local(shapes_graph())


@cache
def _read_predicates() -> frozenset[bytes]:
    """The predicates local shapes read of a node, as N-Triples: rdf:type and those of sh:targetSubjectsOf
    (which shapes apply) and each property shape's sh:path (which values they check)."""
    shapes = shapes_graph()
    read = {RDF.type, *shapes.objects(None, SH.targetSubjectsOf), *shapes.objects(None, SH.path)}
    return frozenset(engine.nt_term(p) for p in read)


_DESCRIBED: dict[frozenset[bytes], tuple[_Result, ...]] = {}
"""SHACL results by node description (its triples' predicates and objects, as N-Triples), for the
descriptions validated at least twice so far in this process."""
_VALIDATED_ONCE: set[int] = set()
"""The hashes of the descriptions validated once: a description is kept in _DESCRIBED when it comes again,
so those that never recur (a patient's, with its identifier) do not fill the cache."""
_MAX_DESCRIBED = 100_000
_STAND_IN = b"<urn:haip:shape-node:"
_SUBCLASS_OF = b"<http://www.w3.org/2000/01/rdf-schema#subClassOf>"


def batch_findings(
    cases: Sequence[tuple[int, Sequence[tuple[Node, Node, Node]], bytes]],
    node_keys: Mapping[Node, str],
    data: ox.Store,
) -> dict[int, list[Finding]]:
    """Validate a batch: (index, triples, the same triples as N-Triples) of each case, all of them also
    in `data`. Findings by case index, as `findings` gives them for the whole batch. When the shapes are
    local and the batch states no rdfs:subClassOf (which SHACL targets follow in the data), each node
    description is validated once, on a stand-in node."""

    def whole_batch() -> dict[int, list[Finding]]:
        return findings(data, owner_index([(i, triples) for i, triples, _d in cases]), node_keys)

    if not _case_shapes_are_local() or any(_SUBCLASS_OF in document for _i, _t, document in cases):
        return whole_batch()
    # N-Triples lines, "subject predicate object .": an IRI or a blank node label holds no space. A node is
    # described by the triples the shapes read (a patient's links to its tumour or labs are left out).
    read = _read_predicates()
    described: dict[bytes, set[bytes]] = defaultdict(set)
    owner: dict[bytes, int] = {}
    for i, _triples, document in cases:
        for line in document.splitlines():
            subject, rest = line.split(b" ", 1)
            owner[subject] = i  # as owner_index: the last case that states anything about the node
            if rest[: rest.index(b" ")] in read:
                described[subject].add(rest)
    descriptions = {node: frozenset(rests) for node, rests in described.items()}
    known: dict[frozenset[bytes], tuple[_Result, ...]] = {}
    for d in set(descriptions.values()):
        cached = _DESCRIBED.get(d)  # one lookup: another thread (haip-kg serve) may empty the cache
        if cached is not None:
            known[d] = cached
    new = [d for d in dict.fromkeys(descriptions.values()) if d not in known]
    if new:
        if len(_DESCRIBED) + len(new) > _MAX_DESCRIBED:
            _DESCRIBED.clear()  # bounded memory
        if len(_VALIDATED_ONCE) + len(new) > 10 * _MAX_DESCRIBED:
            _VALIDATED_ONCE.clear()
        store = ox.Store()
        stand_ins = b"".join(b"%s%d> %s\n" % (_STAND_IN, n, rest) for n, d in enumerate(new) for rest in d)
        store.load(stand_ins, format=ox.RdfFormat.N_TRIPLES)
        results: dict[int, list[_Result]] = defaultdict(list)
        prefix = _STAND_IN[1:].decode()
        for focus, result in _engine_results(store, "turbo"):
            if not str(focus).startswith(prefix) or prefix in result.message:  # not about the node alone
                return whole_batch()
            results[int(str(focus)[len(prefix) :])].append(result)
        for n, d in enumerate(new):
            known[d] = tuple(results.get(n, ()))
            if hash(d) in _VALIDATED_ONCE:
                _DESCRIBED[d] = known[d]
            else:
                _VALIDATED_ONCE.add(hash(d))
    out: dict[int, list[Finding]] = defaultdict(list)
    found = [(node, d) for node, d in descriptions.items() if known[d]]
    if found:
        triples_of = {i: triples for i, triples, _d in cases}
        terms = {engine.nt_term(s): s for i in {owner[n] for n, _d in found} for s, _p, _o in triples_of[i]}
        for node, d in found:
            out[owner[node]] += [_finding(result, terms[node], node_keys) for result in known[d]]
    return _in_order(out)


def owner_index(cases: Sequence[tuple[int, Sequence[tuple[Node, Node, Node]]]]) -> dict[Node, int]:
    """Which case each subject belongs to."""
    return {s: index for index, triples in cases for s, _p, _o in triples}


# --- native RDF against the vocabulary (queries/input/) ------------------------------------------------

_ONTOLOGY_GRAPH = ox.NamedNode("https://w3id.org/haip/graph/ontology")
_CLOSURE_GRAPH = ox.NamedNode("https://w3id.org/haip/graph/ontology-closure")


@cache
def _vocabulary_checks() -> tuple[tuple[str, str], ...]:
    """(name, query text) of each check in queries/input/, by name."""
    return tuple((path.stem, path.read_text(encoding="utf-8")) for path in resources.input_check_files())


@cache
def _ontology_quads() -> tuple[ox.Quad, ...]:
    """The ontology (ontology/haip.ttl) and the case-sheet format as quads in the graph the checks read them
    from, and the ontology's subclass closure (each class rdfs:subClassOf itself and every superclass: one
    lookup per node instead of a property path per triple, about twice as fast) in another."""
    tbox = engine.tbox_graph()
    casesheet_format = Graph().parse(resources.casesheet_file(), format="turtle")
    classes = {*tbox.subjects(RDF.type, OWL.Class), *tbox.subjects(RDFS.subClassOf, None)}
    closure = [
        (c, RDFS.subClassOf, s)
        for c in classes
        if isinstance(c, URIRef)
        for s in tbox.transitive_objects(c, RDFS.subClassOf)
    ]
    return tuple(
        ox.Quad(engine.to_ox(s), engine.to_ox(p), engine.to_ox(o), graph)  # type: ignore[arg-type]
        for graph, triples in (
            (_ONTOLOGY_GRAPH, tbox),
            (_ONTOLOGY_GRAPH, casesheet_format),
            (_CLOSURE_GRAPH, closure),
        )
        for s, p, o in triples
    )


@cache
def _declared() -> dict[str, tuple[str, ...]]:
    """The haip: properties and classes the ontology declares, as haip:name, for "did you mean"."""
    tbox = engine.tbox_graph()
    kinds = {"property": (OWL.ObjectProperty, OWL.DatatypeProperty), "class": (OWL.Class,)}
    return {
        kind: tuple(
            sorted({_curie(s) for t in types for s in tbox.subjects(RDF.type, t) if str(s).startswith(HAIP)})
        )
        for kind, types in kinds.items()
    }


def vocabulary_findings(
    cases: Sequence[tuple[int, Sequence[tuple[Node, Node, Node]], bytes]],
) -> dict[int, list[Finding]]:
    """Check native RDF cases, (index, triples, the same triples as N-Triples) each, against the haip
    vocabulary (queries/input/). Findings by case index; the key is the property (haip:progresed)."""
    if not cases:
        return {}
    store = data_store(document for _i, _triples, document in cases)
    store.extend(_ontology_quads())
    owner = owner_index([(i, triples) for i, triples, _d in cases])
    linked = {o: (s, p) for _i, triples, _d in cases for s, p, o in triples if p != RDF.type}
    out: dict[int, list[Finding]] = defaultdict(list)
    for name, query in _vocabulary_checks():
        for row in store.query(query):  # type: ignore[union-attr]
            node, prop, value = (engine.from_ox(row[v]) for v in ("node", "property", "value"))
            unknown = value if prop == RDF.type else prop
            kind = "class" if prop == RDF.type else "property"
            close = get_close_matches(_curie(unknown), _declared()[kind], n=1)
            message = (
                str(row["message"].value)
                .replace("{node}", _label(node, linked))
                .replace("{value}", _label(value, linked))
                .replace("{suggestion}", f" (did you mean {close[0]}?)" if close else "")
            )
            finding = Finding(
                "violation", _curie(prop), message, None, f"input:{name}", None, node, prop, value
            )
            out[owner[node]].append(finding)
    return _in_order(out)


def _label(term: Node, linked: Mapping[Node, tuple[Node, Node]]) -> str:
    """A term as a message names it: <iri> (haip:Name for the vocabulary's), a literal quoted, a blank
    node by the path that reaches it from the nearest IRI (<patient> haip:hasX/haip:hasY)."""
    if isinstance(term, Literal):
        return repr(str(term))
    if isinstance(term, URIRef) and "/.well-known/genid/" not in term:
        return _curie(term) if term.startswith(HAIP) else f"<{term}>"
    path: list[str] = []
    while term in linked and len(path) < 8:
        term, predicate = linked[term]
        path.insert(0, _curie(predicate))
        if isinstance(term, URIRef) and "/.well-known/genid/" not in term:
            return f"the node reached from <{term}> by {'/'.join(path)}"
    return "a blank node"


def combine(
    shapes: Mapping[int, list[Finding]], vocabulary: Mapping[int, list[Finding]]
) -> dict[int, list[Finding]]:
    """Findings of the shapes and of the vocabulary checks, one per bad value: a shape finding about the
    same node, property and value as a vocabulary finding is left out (the vocabulary finding says in the
    terms of RDF what is wrong with the value)."""
    out: dict[int, list[Finding]] = {}
    for i in {*shapes, *vocabulary}:
        said = {(v.focus, v.path, v.value) for v in vocabulary.get(i, [])}
        kept = [f for f in shapes.get(i, []) if (f.focus, f.path, f.value) not in said]
        out[i] = kept + list(vocabulary.get(i, []))
    return _in_order(out)
