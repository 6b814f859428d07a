"""Check patient data against the input contract (shapes/case.shapes.ttl).

Two SHACL engines with the pySHACL API: pyshacl-turbo (Rust; the default, about 12x faster on a batch of
1,000 case sheets here) and pySHACL (the reference; used for the knowledge-base shapes, and a test checks
that both report the same findings on the shape fixtures).

A batch is validated node by node description (batch_findings): when every shape judges a node by its
own triples alone (shapes_are_local), nodes with the same triples get the same findings, so the engine
validates one stand-in node per description not seen before in this process (about one node in ten
across a cohort: labs, tumours and regimens recur, patients do not). A test checks the findings equal
those of validating the whole batch.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal as Literal_

import pyoxigraph as ox
import pyshacl
import pyshacl_turbo
from rdflib import OWL, RDF, Graph, Literal, URIRef
from rdflib.term import Node

from . import engine, resources
from .namespaces import HAIP, SH


@dataclass(frozen=True)
class Finding:
    """One SHACL result about a case, in the case sheet's terms."""

    severity: str  # "violation" | "warning" | "info"
    key: str | None
    message: str
    shape: str | None


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
        out.append(
            (focus, _Result(severity, path, message, str(shape) if isinstance(shape, URIRef) else None))
        )
    return out


def _finding(result: _Result, focus: Node, node_keys: Mapping[Node, str]) -> Finding:
    """A result in the case sheet's terms: the key of the checked property under its node's key."""
    key = _key_names().get(result.path) if result.path is not None else None
    prefix = node_keys.get(focus, "")
    if key is not None and prefix and "[" in prefix:
        key = f"{prefix}.{key.rsplit('.', 1)[-1]}"
    elif key is not None and prefix and key in ("value", "unit", "uln"):
        key = f"{prefix}.{key}"
    return Finding(result.severity, key, result.message, result.shape)


def _in_order(found: Mapping[int, list[Finding]]) -> dict[int, list[Finding]]:
    """Each case's findings in a stable order: by key, then message."""
    return {
        i: sorted(f, key=lambda f: (f.key or "", f.message, f.severity, f.shape or ""))
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
