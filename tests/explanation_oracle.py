"""An independent reading of the records for tests: the explanation-* queries (queries/report) join the
decisions and the assessments they used in SPARQL, where report.build_record joins them in Python. This
was report.py's second record builder (0.7.0); it stays here as the oracle the one builder is checked
against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from haip_kg import engine
from haip_kg.report import Record, _decoded, _in_order, _reason, _select, _statement_entry


@dataclass
class _Explanations:
    """What the records are assembled from, however it was read (by patient IRI, statement slug)."""

    decisions: list[tuple[str, str, Any]] = field(default_factory=list)  # patient, verdict, score
    statements: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # statement-decisions rows
    reasons: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # in display order
    interpretations: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    missing: list[tuple[str, str, str]] = field(default_factory=list)  # patient, statement, key
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # patient, statement, conflict
    conditions: list[tuple[str, str]] = field(default_factory=list)  # in output order
    flags: list[tuple[str, str]] = field(default_factory=list)


def read(store: engine.Backend) -> _Explanations:
    """Everything about every patient's decisions, from the decisions in the store."""
    read = _Explanations()
    read.decisions = [(r["patient"], r["verdict"], r["score"]) for r in _select(store, "patient-decisions")]
    read.statements = [(r["patient"], r) for r in _select(store, "statement-decisions")]
    for row in _select(store, "explanation-reasons"):
        ordered = sorted(_reason(item) for item in row["values"].split(" "))
        read.reasons[row["patient"], row["statement"]] = list(dict.fromkeys(v for _order, v in ordered))
    for row in _select(store, "explanation-interpretations"):
        read.interpretations[row["patient"], row["statement"]] = {
            _decoded(v) for v in row["values"].split(" ")
        }
    for kind in ("missing", "conflicts"):
        rows = _select(store, f"explanation-{kind}")
        getattr(read, kind).extend((r["patient"], r["statement"], r["value"]) for r in rows)
    read.conditions = [(r["patient"], r["condition"]) for r in _select(store, "patient-conditions")]
    read.flags = [(r["patient"], r["flag"]) for r in _select(store, "patient-flags")]
    return read


def assemble(read: _Explanations) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for patient, verdict, score in read.decisions:
        out[patient] = {
            "verdict": verdict,
            "conditions": [],
            "statements": {},
            "flags": [],
            "clinical_risk_score": score,
        }
    undetermined: set[tuple[str, str]] = set()
    for patient, row in read.statements:
        out[patient]["statements"][row["statement"]] = _statement_entry(row)
        if row["undetermined"]:
            undetermined.add((patient, row["statement"]))
    for (patient, statement), reasons in read.reasons.items():
        out[patient]["statements"][statement]["reasons"] = reasons
    for (patient, statement), interpretations in read.interpretations.items():
        out[patient]["statements"][statement]["interpretations"] = sorted(interpretations)
    for kind, rows in (("missing", read.missing), ("conflicts", read.conflicts)):
        for patient, statement, value in rows:
            values = out[patient]["statements"][statement].setdefault(kind, [])
            if value not in values:
                values.append(value)
    for patient, record in out.items():
        record["statements"] = _in_order(record["statements"])
        for slug, statement in record["statements"].items():
            for kind in ("missing", "conflicts"):
                if kind in statement:
                    statement[kind].sort()
            if (patient, slug) in undetermined:
                statement.setdefault("missing", [])
                statement.setdefault("conflicts", [])
    for patient, condition in read.conditions:
        out[patient]["conditions"].append(condition)
    for patient, flag in read.flags:
        out[patient]["flags"].append(flag)
    return out


def records(store: engine.Backend) -> dict[str, Record]:
    """The records of every patient in a store where every stage ran over every patient."""
    assert not isinstance(store, engine.Profiled)
    return assemble(read(store))
