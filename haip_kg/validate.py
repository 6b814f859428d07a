"""Check patient data against the input contract (shapes/case.shapes.ttl) with pySHACL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from pyshacl import validate as shacl_validate
from rdflib import Graph, Literal, URIRef
from rdflib.term import Node

from . import resources
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
    """Case-sheet key name of each property shape (via haip:forKey and the mapping)."""
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    names = {key: str(name) for key, name in graph.subject_objects(HAIP.keyName)}
    shapes = shapes_graph()
    return {shape: names[key] for shape, key in shapes.subject_objects(HAIP.forKey) if key in names}


_SEVERITY = {SH.Violation: "violation", SH.Warning: "warning", SH.Info: "info"}


def findings(
    data: Graph, owner: Mapping[Node, int], node_keys: Mapping[Node, str]
) -> dict[int, list[Finding]]:
    """Validate a batch graph; findings by the index of the case that owns each focus node."""
    conforms, report, _text = shacl_validate(
        data, shacl_graph=shapes_graph(), inference="none", allow_warnings=True, advanced=True
    )
    out: dict[int, list[Finding]] = defaultdict(list)
    if conforms:
        return out
    assert isinstance(report, Graph)
    names = _key_names()
    for result in report.subjects(SH.resultSeverity, None):
        focus = report.value(result, SH.focusNode)
        if focus is None or focus not in owner:
            continue
        shape = report.value(result, SH.sourceShape)
        key = names.get(shape) if shape is not None else None
        prefix = node_keys.get(focus, "")
        if key is not None and prefix and "[" in prefix:
            key = f"{prefix}.{key.rsplit('.', 1)[-1]}"
        elif key is not None and prefix and key in ("value", "unit", "uln"):
            key = f"{prefix}.{key}"
        message = str(report.value(result, SH.resultMessage) or "does not conform to the input contract")
        value = report.value(result, SH.value)
        if isinstance(value, Literal | URIRef):
            message = f"{message} Got {str(value)!r}."
        severity = _SEVERITY.get(report.value(result, SH.resultSeverity), "violation")  # type: ignore[call-overload]
        out[owner[focus]].append(
            Finding(severity, key, message, str(shape) if isinstance(shape, URIRef) else None)
        )
    return out


def owner_index(cases: Sequence[tuple[int, Sequence[tuple[Node, Node, Node]]]]) -> dict[Node, int]:
    """Which case each subject belongs to."""
    return {s: index for index, triples in cases for s, _p, _o in triples}
