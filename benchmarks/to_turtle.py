"""Convert a case-sheet cohort (JSON) to one RDF file with haip-kg's converter (benchmark preparation):
Turtle for a .ttl target, N-Triples (much faster to write) for a .nt target.

Usage: python benchmarks/to_turtle.py COHORT.json COHORT.ttl|COHORT.nt
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
    graph.serialize(target, format="nt" if target.endswith(".nt") else "turtle", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
