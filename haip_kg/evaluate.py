"""Decide a stream of cases in batches: refuse what is malformed, decide the rest, keep input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from rdflib import Graph

from . import engine, report, validate
from .casesheet import InputError
from .inputs import Case

Record = dict[str, Any]
BATCH_SIZE = 500


@dataclass(frozen=True)
class Batch:
    outcomes: list[Outcome]
    decisions: bytes
    """The batch's decisions as RDF (N-Triples) when asked for (`with_rdf`), else empty."""


@dataclass(frozen=True)
class Outcome:
    case: Case
    record: Record

    @property
    def refused(self) -> bool:
        return "errors" in self.record


def error_record(case: Case, errors: Iterable[InputError]) -> Record:
    return {
        "patient": case.case_id,
        "source": case.source,
        "errors": [{"key": e.key, "message": e.message} for e in errors],
    }


def _refuse_duplicates(cases: Iterable[Case]) -> Iterator[Case]:
    """Of two cases with the same id in one run, the later one is refused."""
    first: dict[str, Case] = {}
    for case in cases:
        case_id = case.case_id
        if case_id is not None and not case.errors:
            earlier = first.setdefault(case_id, case)
            if earlier is not case:
                message = (
                    f"duplicate id {case_id!r}: already used by case {earlier.position + 1} of "
                    f"{earlier.source}; ids must be unique"
                )
                case = Case(case.source, case.position, case_id, None, errors=(InputError("id", message),))
        yield case


def decide_batch(cases: list[Case], with_rdf: bool = False) -> Batch:
    """Decide one batch; the outcomes are in the order of the cases."""
    readable = [(i, case) for i, case in enumerate(cases) if not case.errors]
    data = Graph()
    node_keys: dict[Any, str] = {}
    for _i, case in readable:
        for triple in case.triples:
            data.add(triple)
        node_keys.update(case.node_keys)
    owner = validate.owner_index([(i, case.triples) for i, case in readable])
    findings = validate.findings(data, owner, node_keys) if readable else {}
    refused: dict[int, list[InputError]] = {
        i: _unique(InputError(f.key, f.message) for f in found if f.severity == "violation")
        for i, found in findings.items()
    }
    accepted = [(i, case) for i, case in readable if not refused.get(i)]
    records: dict[str, Record] = {}
    warnings: dict[str, list[dict[str, str]]] = {}
    decisions = b""
    if accepted:
        store = engine.decide(t for _i, case in accepted for t in case.triples)
        records = report.records(store)
        warnings = report.conflicts(store)
        decisions = report.decision_graph(store) if with_rdf else b""
    outcomes = []
    for i, case in enumerate(cases):
        if case.errors or refused.get(i):
            outcomes.append(Outcome(case, error_record(case, case.errors or refused[i])))
            continue
        patient = str(case.patient)
        results = [
            {"severity": f.severity, "key": f.key, "message": f.message, "shape": f.shape}
            for f in findings.get(i, [])
            if f.severity != "violation"
        ] + warnings.get(patient, [])
        record = {
            "patient": case.case_id,
            **records[patient],
            "validation": {"conforms": True, "results": results},
            "source": case.source,
            "consensus": dict(report.SOURCE),
        }
        outcomes.append(Outcome(case, record))
    return Batch(outcomes, decisions)


def _unique(errors: Iterable[InputError]) -> list[InputError]:
    return list(dict.fromkeys(errors))


def evaluate(cases: Iterable[Case], batch_size: int = BATCH_SIZE, with_rdf: bool = False) -> Iterator[Batch]:
    """Batches of outcomes covering every case, in input order, `batch_size` cases at a time."""
    stream = _refuse_duplicates(cases)
    while batch := list(islice(stream, batch_size)):
        yield decide_batch(batch, with_rdf)
