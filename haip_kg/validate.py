"""Check patient data against the input contract (shapes/case.shapes.ttl).

Two SHACL engines with the pySHACL API: pyshacl-turbo (Rust; the default, about 12x faster on a batch of
1,000 case sheets here) and pySHACL (the reference; used for the knowledge-base shapes, and a test checks
that both report the same findings on the shape fixtures).
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
_ENGINES = {"turbo": pyshacl_turbo.validate, "pyshacl": pyshacl.validate}


def data_store(documents: Iterable[bytes]) -> ox.Store:
    """Patient data (N-Triples documents) in an Oxigraph store, the fastest input for pyshacl-turbo."""
    store = ox.Store()
    for document in documents:
        if b"_:" in document:  # Store.load renames blank nodes; findings must name the case's own nodes
            store.extend(ox.parse(document, format=ox.RdfFormat.N_TRIPLES, rename_blank_nodes=False))
        else:
            store.load(document, format=ox.RdfFormat.N_TRIPLES)
    return store


def findings(
    data: Graph | ox.Store, owner: Mapping[Node, int], node_keys: Mapping[Node, str], engine: Engine = "turbo"
) -> dict[int, list[Finding]]:
    """Validate a batch graph; findings by the index of the case that owns each focus node. pySHACL (the
    reference engine) takes an rdflib Graph only."""
    if engine == "pyshacl" and isinstance(data, ox.Store):
        data = Graph().parse(
            data=data.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph()), format="nt"
        )
    with _ONE_AT_A_TIME:  # the engines' shape caches are not documented as thread-safe
        conforms, report, _text = _ENGINES[engine](
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
        path = report.value(result, SH.resultPath)
        key = names.get(path) if path is not None else None
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
