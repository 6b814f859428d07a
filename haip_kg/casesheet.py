"""Turn plain case sheets (JSON objects, CSV rows) into RDF in the ontology's vocabulary.

Everything this module knows about the format comes from ``ontology/casesheet.ttl``: the keys, where
each value goes, its datatype or the class whose individuals (by ``haip:caseSheetCode``) are allowed.
It only checks structure (known keys, objects and lists where the format has them); values that are
of the wrong type or not allowed are written as plain literals so that the SHACL shapes report them
with a message a clinician can act on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any
from urllib.parse import quote

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.term import Node

from . import resources
from .namespaces import CASE_BASE, DCTERMS, HAIP, SH

Triple = tuple[Node, Node, Node]


@dataclass(frozen=True)
class NodeTemplate:
    iri: URIRef
    slug: str
    node_class: URIRef
    link: URIRef
    parent: URIRef | None
    fixed_property: URIRef | None
    fixed_value: URIRef | None
    index_property: URIRef | None


@dataclass(frozen=True)
class KeyDef:
    iri: URIRef
    name: str
    shape: str  # scalar | list | object | object-list
    prop: URIRef | None
    datatype: URIRef | None
    value_class: URIRef | None
    accepts_scalar: bool
    node: URIRef | None
    position: int | None = None
    """Where the field goes in a CSV cell that holds an object (`sh:order`), if it has a place."""


@dataclass(frozen=True)
class CaseSheetMapping:
    keys: dict[str, KeyDef]
    sub_keys: dict[str, dict[str, KeyDef]]
    nodes: dict[URIRef, NodeTemplate]
    codes: dict[URIRef, dict[str, URIRef]]

    def allowed_codes(self, value_class: URIRef) -> list[str]:
        return sorted(self.codes.get(value_class, {}))

    def cell_fields(self, name: str) -> list[str]:
        """The fields of an object key in the order a CSV cell writes them (e.g. `systemic_lines`)."""
        placed = [key for key in self.sub_keys.get(name, {}).values() if key.position is not None]
        return [key.name for key in sorted(placed, key=lambda key: key.position or 0)]


@dataclass(frozen=True)
class InputError:
    """A problem with one case's input: which key (or None for the whole case) and what is wrong."""

    key: str | None
    message: str


@dataclass(frozen=True)
class BadNumber:
    """A number in a case sheet that no key can hold, as written: not finite (`1e400`, `NaN`, `Infinity`)
    or an integer too long to read. The reader keeps it in its place so that the error names its key."""

    text: str

    def __repr__(self) -> str:
        return self.text[:40] + ("..." if len(self.text) > 40 else "")


@dataclass(frozen=True)
class Conversion:
    patient: URIRef
    triples: tuple[Triple, ...]
    errors: tuple[InputError, ...]
    node_keys: Mapping[Node, str] = field(default_factory=dict)
    """Key-path prefix of each node made for the case (e.g. ``systemic_lines[1]``), for messages."""


def _rows(graph: Graph, name: str) -> list[dict[str, Any]]:
    """Rows of a mapping query (queries/mapping) as dictionaries; unbound variables are absent."""
    return [row.asdict() for row in graph.query(resources.query("mapping", name))]  # type: ignore[union-attr]


def _key(row: dict[str, Any], positions: Mapping[Node, int]) -> KeyDef:
    scalar = row.get("acceptsScalar")
    return KeyDef(
        row["key"],
        str(row["name"]),
        str(row["shape"]),
        row.get("property"),
        row.get("datatype"),
        row.get("valueClass"),
        bool(scalar is not None and scalar.toPython()),
        row.get("node"),
        positions.get(row["key"]),
    )


@cache
def _ontology() -> Graph:
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    return graph


def mapping_rows(name: str) -> list[dict[str, Any]]:
    """Rows of the mapping query `name` over the ontology files (read once per process)."""
    return _rows(_ontology(), name)


@cache
def mapping() -> CaseSheetMapping:
    """The case-sheet mapping, read once per process from the ontology files."""
    graph = _ontology()
    nodes = {
        row["node"]: NodeTemplate(
            row["node"],
            str(row["slug"]),
            row["nodeClass"],
            row["link"],
            row.get("parentNode"),
            row.get("fixedProperty"),
            row.get("fixedValue"),
            row.get("indexProperty"),
        )
        for row in _rows(graph, "casesheet-nodes")
    }
    rows = _rows(graph, "casesheet-keys")
    positions = {key: int(order) for key, order in graph.subject_objects(SH.order)}  # type: ignore[call-overload]
    keys = {str(row["name"]): _key(row, positions) for row in rows if "parent" not in row}
    names = {definition.iri: name for name, definition in keys.items()}
    sub_keys: dict[str, dict[str, KeyDef]] = {}
    for row in rows:
        if "parent" in row:
            sub_keys.setdefault(names[row["parent"]], {})[str(row["name"])] = _key(row, positions)
    codes: dict[URIRef, dict[str, URIRef]] = {}
    for row in _rows(graph, "casesheet-codes"):
        codes.setdefault(row["class"], {})[str(row["code"])] = row["individual"]
    return CaseSheetMapping(keys, sub_keys, nodes, codes)


def patient_iri(case_id: str) -> URIRef:
    return URIRef(CASE_BASE + quote(case_id, safe=""))


def _term(value: Any, key: KeyDef, table: CaseSheetMapping) -> Node:
    """The RDF term for a scalar; a value of the wrong type stays a plain literal for SHACL to report."""
    if key.value_class is not None:
        if isinstance(value, str) and value in table.codes.get(key.value_class, {}):
            return table.codes[key.value_class][value]
        return Literal(value if isinstance(value, str) else repr(value))
    if isinstance(value, str | int | float):  # hashable: the same literal is made once
        return _literal(_kind(value), value, key.datatype)
    return Literal(str(value))


def _kind(value: str | int | float) -> str:
    """What keeps apart, in `_literal`'s cache, values that are equal (with equal hashes) but written
    differently: True, 1 and 1.0 by their type; -0.0 and 0.0 by their sign."""
    if isinstance(value, float) and value == 0 and math.copysign(1.0, value) < 0:
        return "negative zero"
    return type(value).__name__


@lru_cache(maxsize=16384)
def _literal(kind: str, value: Any, datatype: URIRef | None) -> Literal:
    """The literal for a value of a key with this datatype (`kind`: see `_kind`)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    finite = is_number and (isinstance(value, int) or math.isfinite(value))  # an int too big for a float
    if datatype == XSD.boolean and isinstance(value, bool):
        return Literal(value)
    if datatype == XSD.integer and is_number and isinstance(value, int):
        return Literal(value, datatype=XSD.integer)
    if datatype == XSD.decimal and finite:
        return Literal(Decimal(str(value)), datatype=XSD.decimal)
    if datatype == XSD.string and isinstance(value, str):
        return Literal(value)
    if finite:
        return Literal(Decimal(str(value)), datatype=XSD.decimal)
    if isinstance(value, bool):
        return Literal(value)
    return Literal(str(value))


class _Builder:
    def __init__(self, patient: URIRef, table: CaseSheetMapping) -> None:
        self.patient = patient
        self.table = table
        self.triples: list[Triple] = []
        self.errors: list[InputError] = []
        self.made: dict[tuple[URIRef, int | None], URIRef] = {}
        self.node_keys: dict[Node, str] = {}

    def node(self, template_iri: URIRef | None, index: int | None = None, key_path: str = "") -> URIRef:
        if template_iri is None:
            return self.patient
        made = self.made.get((template_iri, index))
        if made is not None:
            return made
        template = self.table.nodes[template_iri]
        parent = self.node(template.parent)
        segment = template.slug if index is None else f"{template.slug}/{index}"
        iri = URIRef(f"{parent}/{segment}")
        self.triples += [(iri, RDF.type, template.node_class), (parent, template.link, iri)]
        if template.fixed_property is not None and template.fixed_value is not None:
            self.triples.append((iri, template.fixed_property, template.fixed_value))
        if index is not None and template.index_property is not None:
            self.triples.append((iri, template.index_property, Literal(index, datatype=XSD.integer)))
        self.made[(template_iri, index)] = iri
        self.node_keys[iri] = key_path
        return iri

    def error(self, key: str, message: str) -> None:
        self.errors.append(InputError(key, message))

    def scalar(self, subject: URIRef, key: KeyDef, value: Any, path: str) -> None:
        if isinstance(value, dict | list):
            kind = "an object" if isinstance(value, dict) else "a list"
            self.error(path, f"{path} must be a single value, not {kind}")
            return
        if isinstance(value, BadNumber):
            self.error(
                path, f"{path} is {value!r}: not a number a case sheet can hold (finite, and not too long)"
            )
            return
        assert key.prop is not None
        self.triples.append((subject, key.prop, _term(value, key, self.table)))

    def add(self, key: KeyDef, value: Any) -> None:
        if key.shape == "scalar":
            self.scalar(self.node(key.node, key_path=key.name), key, value, key.name)
        elif key.shape == "list":
            self.add_list(key, value)
        elif key.shape == "object":
            self.add_object(key, value, self.node(key.node, key_path=key.name), key.name)
        else:
            self.add_object_list(key, value)

    def add_list(self, key: KeyDef, value: Any) -> None:
        if not isinstance(value, list):
            if not key.accepts_scalar:
                self.error(key.name, f"{key.name} must be a list (use [] for none)")
                return
            value = [value]
        subject = self.node(key.node, key_path=key.name)
        for item in value:
            if item is not None:
                self.scalar(subject, key, item, key.name)

    def add_object(self, key: KeyDef, value: Any, subject: URIRef, path: str) -> None:
        if not isinstance(value, dict):
            self.error(
                path, f"{path} must be an object with keys {', '.join(sorted(self.table.sub_keys[key.name]))}"
            )
            return
        fields = self.table.sub_keys[key.name]
        for name, item in value.items():
            if name.startswith("_") or item is None:
                continue
            field_def = fields.get(name)
            if field_def is None:
                self.error(
                    f"{path}.{name}", f"unknown key {name!r} in {path}; allowed: {', '.join(sorted(fields))}"
                )
                continue
            self.scalar(subject, field_def, item, f"{path}.{name}")

    def add_object_list(self, key: KeyDef, value: Any) -> None:
        if not isinstance(value, list):
            self.error(key.name, f"{key.name} must be a list of objects (use [] for none)")
            return
        self.node(key.node, key_path=key.name)
        item_template = next(iter(self.table.sub_keys[key.name].values())).node
        for index, item in enumerate(value):
            path = f"{key.name}[{index}]"
            self.add_object(key, item, self.node(item_template, index, key_path=path), path)


def _not_unicode(value: Any, path: str = "") -> tuple[str, str] | None:
    """The key path and text of the first string (or key) in a case sheet that is not Unicode text: JSON
    can escape a lone surrogate (`"\\ud800"`), which no UTF-8 document (N-Triples, JSON output) can hold."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path or "id", value
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key.startswith("_"):
                continue  # a comment: never read, never written
            name = f"{path}.{key}" if path else str(key)
            found = _not_unicode(key, name) or _not_unicode(item, name)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _not_unicode(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def convert(case: Any) -> Conversion:
    """One case sheet (a parsed JSON object, or a CSV row already typed) as triples, or its errors."""
    table = mapping()
    if not isinstance(case, dict):
        return Conversion(URIRef(CASE_BASE), (), (InputError(None, "a case must be a JSON object"),))
    unreadable = _not_unicode(case)
    if unreadable is not None:
        where, text = unreadable
        message = (
            f"{where} holds {text!r}: a lone surrogate, which is not Unicode text (a broken \\u escape?)"
        )
        return Conversion(URIRef(CASE_BASE), (), (InputError(where, message),))
    case_id = case.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        message = (
            "the key 'id' is required: a non-empty string"
            if case_id is None
            else (f"id must be a non-empty string, not {case_id!r}")
        )
        return Conversion(URIRef(CASE_BASE), (), (InputError("id", message),))
    builder = _Builder(patient_iri(case_id), table)
    builder.triples += [
        (builder.patient, RDF.type, HAIP.Patient),
        (builder.patient, DCTERMS.identifier, Literal(case_id)),
    ]
    for name, value in case.items():
        if name == "id" or name.startswith("_") or value is None:
            continue
        key = table.keys.get(name)
        if key is None:
            builder.error(name, f"unknown key {name!r}; see the case-sheet keys in docs/case-sheet.md")
            continue
        builder.add(key, value)
    return Conversion(builder.patient, tuple(builder.triples), tuple(builder.errors), builder.node_keys)
