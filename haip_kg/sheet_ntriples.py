"""Case sheets written as N-Triples straight from the case-sheet mapping, without making rdflib terms.

`sheet_ntriples(sheet)` gives, for a case sheet that `casesheet.convert` converts with no error, the
bytes `engine.ntriples_of(casesheet.convert(sheet).triples)` gives: the same triples in the same order,
each term written as rdflib's N-Triples serializer writes it. For any other sheet (an error, an unknown
key, a value of a type a case sheet cannot hold) it gives None, and the caller converts the sheet with
`casesheet.convert`, which reports what is wrong.

Like `casesheet`, it knows the format only from `ontology/casesheet.ttl` (through `casesheet.mapping()`):
each key's writer (where its value goes, how a value is written) is made once per process from the
mapping, so that a case costs a few dictionary look-ups and string joins. The terms that do not depend on
the case (properties, classes, coded values) are written by rdflib once, when the writers are made; what
depends on the case is written here the way rdflib writes it:

- the patient IRI is `casesheet.patient_iri` (the percent-encoded id under CASE_BASE); a node's IRI is
  its parent's IRI, `/`, its slug (and `/<index>` for an item of a list of objects);
- a string is a plain literal, escaped as rdflib's `_quote_encode` does (backslash, newline, double
  quote and carriage return; nothing else);
- numbers and booleans are typed as `casesheet._literal` types them: a boolean is xsd:boolean (`true`,
  `false`); an integer is xsd:integer (`str`) for a key of that datatype and xsd:decimal otherwise; a
  finite float is xsd:decimal in positional notation (`format(Decimal(repr(x)), "f")`: 1e2 is `100.0`,
  -0.0 is `-0.0`); a value outside a key's coded values is a plain literal of the value (its `repr`
  for a number or boolean).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from rdflib import RDF, XSD, Literal, URIRef

from . import casesheet, engine
from .namespaces import DCTERMS, HAIP

Term = Callable[[Any], str | None]
"""A key's value as an N-Triples term, or None when the value is not one the key can be written with."""


def _escaped(text: str) -> str:
    """`text` as the body of an N-Triples string, escaped exactly as rdflib's N-Triples serializer does."""
    if "\\" in text:
        text = text.replace("\\", "\\\\")
    if "\n" in text:
        text = text.replace("\n", "\\n")
    if '"' in text:
        text = text.replace('"', '\\"')
    if "\r" in text:
        text = text.replace("\r", "\\r")
    return text


def _plain(text: str) -> str:
    return f'"{_escaped(text)}"'


_BOOLEAN = {True: engine.nt_term(Literal(True)).decode(), False: engine.nt_term(Literal(False)).decode()}
_INTEGER = f"^^{engine.nt_term(XSD.integer).decode()}"
_DECIMAL = f"^^{engine.nt_term(XSD.decimal).decode()}"


def _decimal(value: float) -> str:
    """A finite float as xsd:decimal, in positional notation."""
    return f'"{format(Decimal(repr(value)), "f")}"{_DECIMAL}'


def _integer_as_decimal(value: int) -> str | None:
    """An integer as xsd:decimal (any size the reader lets through, as casesheet writes it)."""
    return f'"{value}"{_DECIMAL}'


def _coded_term(codes: dict[str, str]) -> Term:
    """The writer for a key whose values are coded individuals (`haip:keyValueClass`)."""

    def term(value: Any) -> str | None:
        kind = type(value)
        if kind is str:
            return codes.get(value) or _plain(value)
        if kind is bool or kind is int or kind is float:
            return _plain(repr(value))
        return None

    return term


def _typed_term(datatype: URIRef | None) -> Term:
    """The writer for a key with a datatype (`haip:keyDatatype`, or none)."""
    integer = datatype == XSD.integer

    def term(value: Any) -> str | None:
        kind = type(value)
        if kind is str:
            return _plain(value)
        if kind is bool:
            return _BOOLEAN[value]
        if kind is int:
            return f'"{value}"{_INTEGER}' if integer else _integer_as_decimal(value)
        if kind is float:
            return _decimal(value) if math.isfinite(value) else _plain(str(value))
        return None

    return term


@dataclass(frozen=True)
class _Node:
    """A node template (`haip:CaseSheetNode`) with its triples written but for its and its parent's IRIs."""

    template: URIRef
    parent: _Node | None
    slug: str
    typed: str
    """`> rdf:type <class> .` and a newline, to follow `<` and the node's IRI."""
    linked: str
    """`> <link> <`, to follow `<` and the parent's IRI and to be followed by the node's IRI."""
    fixed: str | None
    """`> <fixed property> <fixed value> .` and a newline, to follow `<` and the node's IRI."""
    indexed: str | None
    """`> <index property> "`, to follow `<` and the node's IRI and be followed by the index."""


@dataclass(frozen=True)
class _Field:
    """How a scalar value is written: its property and its term."""

    predicate: str
    """` <property> `, between the subject and the value."""
    term: Term


@dataclass(frozen=True)
class _Key:
    shape: str  # scalar | list | object | object-list, as in casesheet.KeyDef
    node: _Node | None
    field: _Field | None
    """How a value (of a scalar or list key) is written."""
    accepts_scalar: bool
    fields: dict[str, _Field]
    """The fields of an object (each list item of an object list), by name."""
    item: _Node | None
    """The node template of each item of an object list."""


@dataclass(frozen=True)
class _Plan:
    keys: dict[str, _Key]
    typed_patient: str
    """`> rdf:type haip:Patient .` and a newline, then `<`."""
    identified: str
    """`> dcterms:identifier `."""


def _iri(term: URIRef) -> str:
    return engine.nt_term(term).decode()


@cache
def _plan() -> _Plan:
    """The writers of every key of the mapping (made once per process)."""
    table = casesheet.mapping()
    nodes: dict[URIRef, _Node] = {}

    def node(iri: URIRef | None) -> _Node | None:
        if iri is None:
            return None
        if iri not in nodes:
            template = table.nodes[iri]
            fixed = None
            if template.fixed_property is not None and template.fixed_value is not None:
                fixed = f"> {_iri(template.fixed_property)} {_iri(template.fixed_value)} .\n"
            indexed = None if template.index_property is None else f'> {_iri(template.index_property)} "'
            nodes[iri] = _Node(
                iri,
                node(template.parent),
                template.slug,
                f"> {_iri(RDF.type)} {_iri(template.node_class)} .\n",
                f"> {_iri(template.link)} <",
                fixed,
                indexed,
            )
        return nodes[iri]

    def field(key: casesheet.KeyDef) -> _Field | None:
        if key.prop is None:
            return None
        if key.value_class is not None:
            codes = {code: _iri(iri) for code, iri in table.codes.get(key.value_class, {}).items()}
            return _Field(f" {_iri(key.prop)} ", _coded_term(codes))
        return _Field(f" {_iri(key.prop)} ", _typed_term(key.datatype))

    keys: dict[str, _Key] = {}
    for name, key in table.keys.items():
        sub_keys = table.sub_keys.get(name, {})
        item = node(next(iter(sub_keys.values())).node) if key.shape == "object-list" and sub_keys else None
        fields = {field_name: field(sub_key) for field_name, sub_key in sub_keys.items()}
        keys[name] = _Key(
            key.shape,
            node(key.node),
            field(key),
            key.accepts_scalar,
            {field_name: made for field_name, made in fields.items() if made is not None},
            item,
        )
    return _Plan(
        keys,
        f"> {_iri(RDF.type)} {_iri(HAIP.Patient)} .\n<",
        f"> {_iri(DCTERMS.identifier)} ",
    )


class _Unclean(Exception):
    """The sheet is not one this module writes: the caller converts it with casesheet instead."""


class _Writer:
    """The N-Triples lines of one case sheet, in the order casesheet's converter makes its triples."""

    def __init__(self, patient: str) -> None:
        self.patient = patient
        self.lines: list[str] = []
        self.made: dict[tuple[URIRef, int | None], str] = {}

    def node(self, node: _Node | None, index: int | None = None) -> str:
        """The IRI (without brackets) of the case's node for the template, written when first needed."""
        if node is None:
            return self.patient
        made = self.made.get((node.template, index))
        if made is not None:
            return made
        parent = self.node(node.parent)
        iri = f"{parent}/{node.slug}" if index is None else f"{parent}/{node.slug}/{index}"
        self.lines.append(f"<{iri}{node.typed}<{parent}{node.linked}{iri}> .\n")
        if node.fixed is not None:
            self.lines.append(f"<{iri}{node.fixed}")
        if index is not None and node.indexed is not None:
            self.lines.append(f'<{iri}{node.indexed}{index}"{_INTEGER} .\n')
        self.made[(node.template, index)] = iri
        return iri

    def scalar(self, subject: str, field: _Field, value: Any) -> None:
        term = field.term(value)
        if term is None:
            raise _Unclean
        self.lines.append(f"<{subject}>{field.predicate}{term} .\n")

    def add(self, key: _Key, value: Any) -> None:
        if key.shape == "scalar" and key.field is not None:
            self.scalar(self.node(key.node), key.field, value)
        elif key.shape == "list" and key.field is not None:
            if not isinstance(value, list):
                if not key.accepts_scalar:
                    raise _Unclean
                value = [value]
            subject = self.node(key.node)
            for item in value:
                if item is not None:
                    self.scalar(subject, key.field, item)
        elif key.shape == "object":
            self.add_object(key, value, self.node(key.node))
        elif key.shape == "object-list" and isinstance(value, list) and key.item is not None:
            self.node(key.node)
            for index, item in enumerate(value):
                self.add_object(key, item, self.node(key.item, index))
        else:
            raise _Unclean

    def add_object(self, key: _Key, value: Any, subject: str) -> None:
        if not isinstance(value, dict):
            raise _Unclean
        for name, item in value.items():
            if type(name) is not str:
                raise _Unclean
            if name.startswith("_") or item is None:
                continue
            field = key.fields.get(name)
            if field is None:
                raise _Unclean
            self.scalar(subject, field, item)


def sheet_ntriples(sheet: Any) -> bytes | None:
    """The case sheet (a parsed JSON object or typed CSV row) as the N-Triples `casesheet.convert` and
    `engine.ntriples_of` make of it, byte for byte; None when it is not clean (convert reports an error,
    or would raise), so that the caller converts it with casesheet."""
    if not isinstance(sheet, dict):
        return None
    case_id = sheet.get("id")
    if not isinstance(case_id, str) or not case_id.strip():
        return None
    plan = _plan()
    try:
        patient = str(casesheet.patient_iri(case_id))
        writer = _Writer(patient)
        writer.lines.append(f"<{patient}{plan.typed_patient}{patient}{plan.identified}{_plain(case_id)} .\n")
        for name, value in sheet.items():
            if type(name) is not str:
                return None
            if name == "id" or name.startswith("_") or value is None:
                continue
            key = plan.keys.get(name)
            if key is None:
                return None
            writer.add(key, value)
        return "".join(writer.lines).encode("utf-8")
    except _Unclean:
        return None
    except ValueError:  # where casesheet's path raises too: a lone surrogate (JSON "\ud800") cannot be
        return None  # encoded, an integer of over 4,300 digits cannot be written
