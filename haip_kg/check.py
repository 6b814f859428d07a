"""`haip-kg check`: the knowledge base is consistent (HermiT), complete (kb shapes) and clean (QC queries)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyshacl import validate as shacl_validate
from rdflib import OWL, Graph

from . import resources


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    details: tuple[str, ...] = ()


def knowledge_base() -> Graph:
    graph = Graph()
    for path in resources.ontology_files():
        graph.parse(path, format="turtle")
    return graph


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


def kb_shapes() -> CheckResult:
    conforms, _graph, text = shacl_validate(
        knowledge_base(),
        shacl_graph=Graph().parse(resources.kb_shapes_file(), format="turtle"),
        inference="none",
    )
    return CheckResult(
        "knowledge-base shapes (shapes/kb.shapes.ttl)", bool(conforms), () if conforms else (str(text),)
    )


def qc_queries() -> list[CheckResult]:
    graph = knowledge_base()
    out = []
    for path in resources.qc_files():
        result = graph.query(path.read_text(encoding="utf-8"))
        rows = [row.asdict() for row in result]  # type: ignore[union-attr]
        details = tuple(" ".join(str(v) for v in row.values()) for row in rows)
        out.append(CheckResult(f"QC {path.name}", not rows, details))
    return out


def run_all(with_reasoner: bool = True) -> list[CheckResult]:
    results = [kb_shapes(), *qc_queries()]
    if with_reasoner:
        results.insert(0, hermit_consistency())
    return results
