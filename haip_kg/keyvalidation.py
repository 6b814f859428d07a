"""Validate case sheets key by key: a case sheet's findings are put together from those of its top-level
keys' values (the whole value: a list of courses, a lab object), each validated once per process on a
stand-in patient that has only an id and that value.

That gives the findings of validating the case's own triples (validate.batch_findings) when every shape
judges a node by its own triples (validate.shapes_are_local) and, in the case-sheet mapping, each
predicate the shapes read is written on a node by one key only, or written alike by every key that makes
the node (its class, a fixed property, the link to a node several keys share): `keys_are_local` checks
this on the shapes and the mapping. A shape that targets the subjects of a predicate may only judge
predicates the same key writes, and the id may only be checked for its count and for being a string (the
same for every id, so no patient's own value is validated).

A finding about a predicate that no value of the case writes (a required key that is missing) comes from
the stand-in of any value that makes the node, and counts once, unless another value of the case writes
that predicate there. Findings are kept relative to the stand-in patient's IRI and put on each patient's
own nodes (the converter names every node it makes below the patient's IRI).
"""

from __future__ import annotations

import marshal
import threading
import time
from bisect import bisect_left
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cache
from typing import Any

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.term import Node

from . import casesheet, engine, validate
from .casesheet import CaseSheetMapping
from .inputs import Sheet
from .namespaces import SH
from .sheet_ntriples import sheet_ntriples
from .validate import Finding

ID = "id"
"""The case sheet's identifier key, which the converter reads to name the patient."""
MAX_ENTRIES = 50_000
"""The bound of the cache of (key, value) findings; the least recently used entry goes first."""


@dataclass(frozen=True)
class _Checked:
    """What a stand-in patient with one (key, value) was found to have: each finding with its node (its
    IRI after the patient's, "" for the patient) and property, and the (node, property) pairs the value
    writes."""

    findings: tuple[tuple[str, str, Finding], ...]
    writes: frozenset[tuple[str, str]]


_CACHE: OrderedDict[tuple[str, Hashable], _Checked] = OrderedDict()
_LOCK = threading.Lock()
_COUNTS = {"hits": 0, "misses": 0}
_SECONDS = [0.0]
"""Time spent validating new values."""


def cache_info() -> dict[str, Any]:
    """Hits, misses, size and bound of the (key, value) cache in this process."""
    with _LOCK:
        return {**_COUNTS, "size": len(_CACHE), "bound": MAX_ENTRIES, "seconds": round(_SECONDS[0], 3)}


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()
        _COUNTS.update(hits=0, misses=0)
        _SECONDS[0] = 0.0


# --- when findings decompose by key ---------------------------------------------------------------------

_Template = URIRef | None
"""A node template of the mapping; None for the patient."""


def writers(table: CaseSheetMapping) -> dict[tuple[_Template, Node], set[Hashable]]:
    """For each (node template, predicate) the converter writes, who writes which triples: a key name
    for the triples one key's value makes, a template for the triples that making that node writes
    (class, fixed property, link from its parent), which are the same whichever key makes it."""
    out: dict[tuple[_Template, Node], set[Hashable]] = defaultdict(set)
    out[(None, RDF.type)].add(None)  # the patient's class, written with its id

    def make(template: _Template, key: str) -> None:
        while template is not None:
            node = table.nodes[template]
            out[(template, RDF.type)].add(template)
            if node.fixed_property is not None:
                out[(template, node.fixed_property)].add(template)
            if node.index_property is not None:  # one node per item: the links and indexes are the value's
                out[(template, node.index_property)].add(key)
                out[(node.parent, node.link)].add(key)
            else:
                out[(node.parent, node.link)].add(template)
            template = node.parent

    for name, key in table.keys.items():
        make(key.node, name)
        if key.shape in ("scalar", "list"):
            assert key.prop is not None
            out[(key.node, key.prop)].add(name)
        for field in table.sub_keys.get(name, {}).values():
            template = field.node if key.shape == "object-list" else key.node
            make(template, name)
            assert field.prop is not None
            out[(template, field.prop)].add(name)
    return out


_ANNOTATIONS = frozenset({SH.path, SH.severity, SH.message, SH.name, SH.description, SH.order, SH.group})
_COUNT_AND_TYPE = frozenset({SH.minCount, SH.maxCount, SH.datatype})


def keys_are_local(shapes: Graph, table: CaseSheetMapping) -> bool:
    """Whether a case sheet's findings are the union of its keys' values' findings (see the module's
    docstring): the shapes are local (validate.shapes_are_local); every predicate they read (a property
    shape's path, a targeted predicate, rdf:type for class targets) is written on each node template by
    one key or alike by every key that makes the node; a shape targeting subjects of a predicate judges
    only predicates written there by the same key, or by none; the id's own constraints read only its
    count and whether it is a string."""
    if not validate.shapes_are_local(shapes):
        return False
    written = writers(table)
    read = {RDF.type, *shapes.objects(None, SH.path), *shapes.objects(None, SH.targetSubjectsOf)}
    if any(len(who) > 1 for (_template, predicate), who in written.items() if predicate in read):
        return False
    for shape, targeted in shapes.subject_objects(SH.targetSubjectsOf):
        judged = {shapes.value(p, SH.path) for p in shapes.objects(shape, SH.property)}
        judged.add(shapes.value(shape, SH.path))
        for (template, written_predicate), who in written.items():
            if written_predicate == targeted and any(
                written.get((template, p), who) != who for p in judged if p
            ):
                return False
    identifier = table.keys[ID].prop
    for shape in shapes.subjects(SH.path, identifier):
        for predicate, obj in shapes.predicate_objects(shape):
            if not str(predicate).startswith(str(SH)) or predicate in _ANNOTATIONS:
                continue
            if predicate not in _COUNT_AND_TYPE or (predicate == SH.datatype and obj != XSD.string):
                return False
    return True


@cache
def _case_keys_are_local() -> bool:
    return keys_are_local(validate.shapes_graph(), casesheet.mapping())


@cache
def _read() -> frozenset[str]:
    """The predicates the shapes read of a node: rdf:type (class targets), targeted and checked ones."""
    shapes = validate.shapes_graph()
    read = {RDF.type, *shapes.objects(None, SH.path), *shapes.objects(None, SH.targetSubjectsOf)}
    return frozenset(str(p) for p in read)


def prepare() -> None:
    """Read the shapes and the mapping and decide locality once (before forking workers)."""
    validate.prepare()
    _case_keys_are_local()
    _read()
    _id_writes()


# --- a batch --------------------------------------------------------------------------------------------


_PLAIN = frozenset({str, int, bool, type(None)})
"""Value types whose equal values convert alike (True and 1 are apart by their type)."""


def _canonical(value: Any) -> Hashable:
    """A value as a cache key: equal keys convert to the same triples. Objects and lists are marshalled
    (in C; it keeps types apart, True, 1 and 1.0, -0.0 and 0.0, and objects' key order; an interned string
    marshals apart from an equal one, which costs a miss at worst)."""
    kind = value.__class__
    if kind in _PLAIN or kind is casesheet.BadNumber:
        return (kind, value)
    try:
        return marshal.dumps(value, 2)
    except ValueError:  # holds a BadNumber, or a type that marshal does not know
        if kind is dict:
            return (dict, tuple((name, _canonical(item)) for name, item in value.items()))
        if kind is list:
            return (list, tuple(_canonical(item) for item in value))
        return (kind, repr(value))


def _stand_in_sheet(patient_id: str, key: str, value: Any) -> dict[str, Any]:
    """A case sheet with only this id and this key's value (only the id for the id key)."""
    return {ID: patient_id} if key == ID else {ID: patient_id, key: value}


def _stand_in(patient_id: str, key: str, value: Any) -> tuple[bytes, str]:
    """A stand-in patient's N-Triples and IRI. The one place that converts to N-Triples: straight from the
    mapping (sheet_ntriples), or by the rdflib converter for a value that does not convert cleanly."""
    sheet = _stand_in_sheet(patient_id, key, value)
    data = sheet_ntriples(sheet)
    if data is not None:
        return data, str(casesheet.patient_iri(patient_id))
    conversion = casesheet.convert(sheet)
    return engine.ntriples_of(conversion.triples), str(conversion.patient)


def _node_keys(patient_id: str, key: str, value: Any) -> Mapping[Node, str]:
    """The key path of each node made for a stand-in patient (for its findings' keys)."""
    return casesheet.convert(_stand_in_sheet(patient_id, key, value)).node_keys


def _lines(document: bytes, patient: str) -> list[tuple[str, str, bytes]] | None:
    """(node after the patient's IRI, predicate, line) of each triple of a stand-in; None if a subject is
    not an IRI."""
    out = []
    for line in document.splitlines(keepends=True):  # "<subject> <predicate> object ."
        subject, predicate, _rest = line.split(b" ", 2)
        if subject[:1] != b"<":
            return None
        out.append((subject[1:-1].decode()[len(patient) :], predicate[1:-1].decode(), line))
    return out


@cache
def _id_writes() -> frozenset[tuple[str, str]]:
    """What the id writes in every stand-in, as (node, predicate): the patient's class and identifier."""
    document, patient = _stand_in("0", ID, None)
    return frozenset((node, predicate) for node, predicate, _line in _lines(document, patient) or ())


def _check(new: Sequence[tuple[str, Any]]) -> list[_Checked] | None:
    """Validate (key, value) pairs on one stand-in patient each, in one run of the engine; None when a
    finding is not about the stand-in's own nodes alone (then the batch must be validated whole). A
    stand-in whose value writes nothing on the patient that a shape reads is validated without the patient
    node: what the shapes find there is found on the id's own stand-in."""
    documents = []
    owner: dict[str, tuple[int, str]] = {}
    writes: list[frozenset[tuple[str, str]]] = []
    patients = []
    for n, (key, value) in enumerate(new):
        document, patient = _stand_in(str(n), key, value)
        triples = _lines(document, patient)
        if triples is None:
            return None
        patients.append(patient)
        written = {(node, predicate) for node, predicate, _line in triples}
        if key != ID:
            written -= _id_writes()
            if not any(node == "" and predicate in _read() for node, predicate in written):
                triples = [triple for triple in triples if triple[0] != ""]
        documents += [line for _node, _predicate, line in triples]
        owner.update((patient + node, (n, node)) for node, _predicate, _line in triples)
        writes.append(frozenset(written))
    found: list[list[tuple[str, str, Finding]]] = [[] for _ in new]
    node_keys: dict[Node, str] = {}
    for focus, result in validate._engine_results(validate.data_store([b"".join(documents)]), "turbo"):
        placed = owner.get(str(focus))
        if placed is None or result.path is None:
            return None
        n, node = placed
        if not found[n]:
            node_keys.update(_node_keys(str(n), *new[n]))
        if new[n][0] == ID and (node, str(result.path)) in writes[n]:
            return None  # a finding about the id itself would name the stand-in's id
        finding = validate._finding(result, focus, node_keys)
        if any(patients[n] in str(term) for term in (finding.message, finding.value)):
            return None  # names the stand-in: not about the value alone
        found[n].append((node, str(result.path), replace(finding, focus=None)))
    return [_Checked(tuple(f), w) for f, w in zip(found, writes, strict=True)]


_ID_ONLY = (ID, None)
"""The entry of a stand-in with only an id: the patient's findings that no value of the case changes."""


def sheet_findings(sheets: Sequence[tuple[int, Mapping[str, Any]]]) -> dict[int, list[Finding]] | None:
    """Findings of case sheets, (index, sheet) each, by index: what validate.batch_findings gives for the
    same sheets converted, in the same order. None when the shapes and mapping do not decompose by key
    (keys_are_local), when two sheets have the same id (their triples would make one patient) or when a
    stand-in's finding is not about its own nodes alone; then validate the converted batch."""
    if not _case_keys_are_local():
        return None
    cases: dict[int, tuple[str, list[tuple[str, Hashable]], Mapping[str, Any]]] = {}
    wanted: set[tuple[str, Hashable]] = {_ID_ONLY}
    aliases: dict[tuple[str, Hashable], tuple[str, Hashable]] = {}
    for i, sheet in sheets:
        case_id = Sheet("", i, sheet).case_id
        if case_id is None:  # no id: nothing is converted, nothing validated
            continue
        pairs = [
            (k, (v.__class__, v) if v.__class__ in _PLAIN else _canonical(v))
            for k, v in sheet.items()
            if k != ID
        ]
        wanted.update(pairs)
        cases[i] = (case_id, pairs, sheet)
    if _abstraction_sound():  # a value not seen, but alike for the shapes to one found clean, is clean
        unseen = _unseen(wanted)
        for _case_id, pairs, sheet in cases.values():
            for n, (k, canonical) in enumerate(pairs):
                if (k, canonical) in unseen:
                    abstract = _abstract(k, sheet[k])
                    if abstract is not None:
                        aliases[k, canonical] = (k, abstract)
                        if _clean((k, abstract)):
                            pairs[n] = (k, abstract)
        wanted = {_ID_ONLY, *(entry for _c, pairs, _s in cases.values() for entry in pairs)}
    if len({case_id for case_id, _pairs, _sheet in cases.values()}) < len(cases):
        return None
    known = _cached(wanted, sum(len(pairs) for _case_id, pairs, _sheet in cases.values()))
    if len(known) < len(wanted):
        new = [entry for entry in wanted if entry not in known]
        values: dict[tuple[str, Hashable], Any] = {_ID_ONLY: None}
        for _case_id, pairs, sheet in cases.values():
            values.update((entry, sheet[entry[0]]) for entry in pairs if entry not in known)
        started = time.perf_counter()
        checked = _check([(key, values[(key, canonical)]) for key, canonical in new])
        with _LOCK:
            _SECONDS[0] += time.perf_counter() - started
        if checked is None:
            return None
        known.update(zip(new, checked, strict=True))
        _keep(dict(zip(new, checked, strict=True)))
        _keep({aliases[e]: c for e, c in zip(new, checked, strict=True) if e in aliases and not c.findings})
    flagged = {entry for entry, checked in known.items() if checked.findings}
    out = {}
    for i, (case_id, pairs, _sheet) in cases.items() if flagged else ():
        if _ID_ONLY in flagged or not flagged.isdisjoint(pairs):
            entries = [known[_ID_ONLY], *(known[entry] for entry in pairs)]
            found = _put_together(entries, str(casesheet.patient_iri(case_id)))
            if found:
                out[i] = found
    return validate._in_order(out)


# --- values alike for the shapes --------------------------------------------------------------------------

_VALUE_BLIND = frozenset(
    SH[name]
    for name in [
        *("path", "property", "severity", "message", "name", "description", "order", "group"),
        *("deactivated", "targetClass", "targetSubjectsOf", "targetObjectsOf", "targetNode"),
        *("minCount", "maxCount", "datatype", "in"),
        *("minInclusive", "minExclusive", "maxInclusive", "maxExclusive"),
    ]
)
"""What the case shapes may use for two values to be alike for them when they are alike below: the
constraints that read a number only by comparing it with a bound, and a free text only by its datatype."""


@cache
def _abstraction_sound() -> bool:
    """Whether the case shapes read numbers only by comparing them with bounds (sh:minInclusive and the
    like) and their datatype, and text only by its datatype or by sh:in lists of IRIs (codes): then two
    values of a key that differ only in numbers on the same sides of every bound, or in free text, get the
    same findings, or none. Read from the shapes graph: any other constraint turns this off."""
    graph = validate.shapes_graph()
    used = {p for p in graph.predicates() if isinstance(p, URIRef) and str(p).startswith(str(SH))}
    if not used <= _VALUE_BLIND:
        return False
    members = [m for listed in graph.objects(None, SH["in"]) for m in graph.items(listed)]
    return all(isinstance(m, URIRef) for m in members)


@cache
def _bounds() -> tuple[Any, ...]:
    """Every number the case shapes compare values with, sorted."""
    graph = validate.shapes_graph()
    found = {
        o.toPython()
        for name in ("minInclusive", "minExclusive", "maxInclusive", "maxExclusive")
        for o in graph.objects(None, SH[name])
        if isinstance(o, Literal)
    }
    return tuple(sorted(found))


_EXACT = 2**53
"""Numbers are alike only well inside what every datatype check takes: integers below 2**53 (xsd:integer
stops at 2**63 in the validator), decimals under 10**15 in plain notation (with few enough digits)."""


def _plain_float(number: float) -> bool:
    text = repr(number)
    return abs(number) < 1e15 and "e" not in text and len(text) <= 17


def _side(number: float) -> tuple[int, bool]:
    """Where a number lies among the bounds, compared as the decimal the converter writes: how many are
    below it, and whether it equals the next (the same for two numbers exactly when they are on the same
    sides of every bound)."""
    bounds = _bounds()
    exact = Decimal(repr(number)) if isinstance(number, float) else number
    below = bisect_left(bounds, exact)
    return below, below < len(bounds) and bounds[below] == exact


def _abstract(key: str, value: Any) -> Hashable | None:
    """`value` as the shapes see it: each number as its type and which side of every bound it is on, each
    free text (a field whose mapping has no code list) as just text; None if it holds neither."""
    table = casesheet.mapping()
    definition = table.keys.get(key)
    if definition is None:
        return None
    fields = table.sub_keys.get(key, {})
    abstracted = False

    def walk(item: Any, field: Any) -> Hashable:
        nonlocal abstracted
        kind = item.__class__
        if kind is dict:
            return (dict, tuple((name, walk(part, fields.get(name))) for name, part in item.items()))
        if kind is list:
            return (list, tuple(walk(part, field) for part in item))
        if (kind is int and -_EXACT < item < _EXACT) or (kind is float and _plain_float(item)):
            abstracted = True
            return ("number", kind, _side(item))
        if kind is str and field is not None and field.value_class is None:
            abstracted = True
            return ("text",)
        return _canonical(item)

    shape = walk(value, definition)
    return ("alike", shape) if abstracted else None


def _unseen(entries: Iterable[tuple[str, Hashable]]) -> set[tuple[str, Hashable]]:
    """The entries not in the cache (not counted: see _cached)."""
    with _LOCK:
        return {entry for entry in entries if entry not in _CACHE}


def _clean(entry: tuple[str, Hashable]) -> bool:
    """Whether `entry` (an abstract value) is known to have no findings. Not counted: see _cached."""
    with _LOCK:
        return entry in _CACHE


def _cached(entries: Iterable[tuple[str, Hashable]], lookups: int) -> dict[tuple[str, Hashable], _Checked]:
    """The entries in the cache (now the most recently used). Counts the misses, and as hits the other of
    `lookups` (a case's values, its id left out)."""
    known = {}
    with _LOCK:
        for entry in entries:
            checked = _CACHE.get(entry)
            if checked is not None:
                _CACHE.move_to_end(entry)
                known[entry] = checked
        misses = sum(1 for entry in entries if entry not in known and entry != _ID_ONLY)
        _COUNTS["hits"] += lookups - misses
        _COUNTS["misses"] += misses
    return known


def _keep(checked: Mapping[tuple[str, Hashable], _Checked]) -> None:
    with _LOCK:
        _CACHE.update(checked)
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)


def _put_together(entries: Sequence[_Checked], patient: str) -> list[Finding]:
    """A case's findings from its values' (the first entry the id's): a finding about a (node, property)
    the entry's value does not write counts unless another value of the case writes it; a finding
    several entries share (the same node and finding) counts once."""
    written = frozenset().union(*(e.writes for e in entries))
    out = []
    seen = set()
    for entry in entries:
        for suffix, path, finding in entry.findings:
            if (suffix, path) not in entry.writes and (suffix, path) in written:
                continue
            if (suffix, finding) not in seen:
                seen.add((suffix, finding))
                out.append(replace(finding, focus=URIRef(patient + suffix)))
    return out
