"""`haip-kg convert`: the RDF that case sheets become, checked against the input contract as `evaluate`
checks them, so that a cohort can be loaded into a SPARQL store and decided there (in-place mode)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pyoxigraph as ox

from . import engine, validate
from .casesheet import InputError
from .evaluate import BATCH_SIZE, Outcome, _refuse_duplicates, error_record
from .inputs import Item, to_case
from .namespaces import PREFIXES

FORMATS = {"turtle": ox.RdfFormat.TURTLE, "nt": ox.RdfFormat.N_TRIPLES, "jsonld": ox.RdfFormat.JSON_LD}


@dataclass(frozen=True)
class Converted:
    """One batch: an outcome per case (an error record for a refused case, {"patient": id} otherwise),
    in input order, and the accepted cases' triples as N-Triples."""

    outcomes: list[Outcome]
    ntriples: bytes


def convert_batch(items: list[Item]) -> Converted:
    """Convert one batch and refuse, as `evaluate` does, the cases that cannot be read or that break the
    input contract (SHACL violations); warnings do not refuse a case."""
    cases = [to_case(item) for item in items]
    readable = [(i, case) for i, case in enumerate(cases) if not case.errors]
    data = {i: engine.ntriples_of(case.triples) for i, case in readable}
    node_keys = {node: key for _i, case in readable for node, key in case.node_keys.items()}
    store = validate.data_store(data.values())
    findings = validate.batch_findings([(i, case.triples, data[i]) for i, case in readable], node_keys, store)
    outcomes = []
    accepted = []
    for i, case in enumerate(cases):
        violations = [InputError(f.key, f.message) for f in findings.get(i, []) if f.severity == "violation"]
        errors = case.errors or tuple(dict.fromkeys(violations))
        record = error_record(case, errors) if errors else {"patient": case.case_id, "source": case.source}
        if not errors:
            accepted.append(data[i])
        outcomes.append(Outcome(case.source, case.position, case.case_id, record))
    return Converted(outcomes, b"".join(accepted))


def convert(items: Iterable[Item], batch_size: int = BATCH_SIZE) -> Iterator[Converted]:
    """Batches covering every case, in input order (of two cases with the same id, the later is refused)."""
    stream = _refuse_duplicates(items)
    for batch in iter(lambda: list(islice(stream, batch_size)), []):
        yield convert_batch(batch)


def write(batches: Iterable[Converted], fmt: str, output: Any) -> None:
    """Write the accepted cases' triples in `fmt` (turtle, nt, jsonld) to a binary file-like object (with
    `write(bytes)`)."""
    triples = (
        quad.triple for batch in batches for quad in ox.parse(batch.ntriples, format=ox.RdfFormat.N_TRIPLES)
    )
    prefixes = {name: PREFIXES[name] for name in ("haip", "dcterms", "qudt", "xsd")}
    ox.serialize(triples, output, FORMATS[fmt], prefixes=prefixes if fmt != "nt" else None)
