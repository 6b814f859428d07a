"""Convert a case-sheet cohort (JSON) to one Turtle file with haip-kg's converter (benchmark preparation).

Usage: python benchmarks/to_turtle.py COHORT.json COHORT.ttl
"""

from __future__ import annotations

import sys

from rdflib import Graph

from haip_kg import inputs
from haip_kg.namespaces import PREFIXES


def main(source: str, target: str) -> None:
    graph = Graph()
    for prefix, iri in PREFIXES.items():
        graph.bind(prefix, iri)
    for case in inputs.read(source):
        for triple in case.triples:
            graph.add(triple)
    graph.serialize(target, format="turtle")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
