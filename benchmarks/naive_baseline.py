"""The naive baseline a user would write with the usual Python stack, on the same rules and data:
rdflib parses the cohort (Turtle), pySHACL validates it, owlrl computes the OWL RL closure of ontology +
cohort, and rdflib's SPARQL engine runs the same rule files (queries/rules) stage by stage.

Usage: python benchmarks/naive_baseline.py COHORT.ttl|COHORT.nt   (prints JSON: patients, seconds per step)
"""

from __future__ import annotations

import json
import sys
import time

import owlrl
from pyshacl import validate
from rdflib import Graph

from haip_kg import engine, resources


def main(path: str) -> None:
    steps: dict[str, float] = {}
    start = time.perf_counter()
    data = Graph().parse(path, format="nt" if path.endswith(".nt") else "turtle")
    steps["parse"] = time.perf_counter() - start

    mark = time.perf_counter()
    shapes = Graph().parse(resources.case_shapes_file(), format="turtle")
    validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    steps["validate"] = time.perf_counter() - mark

    mark = time.perf_counter()
    graph = Graph()
    for ontology in resources.ontology_files():
        graph.parse(ontology, format="turtle")
    graph += data
    for stage in engine.STAGES_BEFORE_REASONING:
        for _name, text in engine.rules(stage):
            graph += graph.query(text).graph  # type: ignore[operator]
    steps["rules before reasoning"] = time.perf_counter() - mark

    mark = time.perf_counter()
    owlrl.DeductiveClosure(owlrl.OWLRL_Semantics).expand(graph)
    steps["owlrl closure"] = time.perf_counter() - mark

    mark = time.perf_counter()
    for stage in engine.STAGES_AFTER_REASONING:
        for _name, text in engine.rules(stage):
            graph += graph.query(text).graph  # type: ignore[operator]
    patients = len(list(graph.query("SELECT ?d WHERE { ?d a <https://w3id.org/haip/PatientDecision> }")))
    steps["rules after reasoning"] = time.perf_counter() - mark

    print(json.dumps({"patients": patients, "seconds": time.perf_counter() - start, "steps": steps}))


if __name__ == "__main__":
    main(sys.argv[1])
