"""Read decisions out of the store (queries/report) into the JSON output contract."""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import pyoxigraph as ox

from . import engine, resources
from .namespaces import PREFIXES

STATEMENTS = ("S1", "S2", "S3a", "S3b", "S4", "S5")
SOURCE = {
    "doi": "10.3747/co.21.1577",
    "citation": "Karanicolas PJ et al. Curr Oncol 2014;21(1):e129-e136",
    "policy": "decision policy v1",
}

Record = dict[str, Any]
TRUTH = {f"{PREFIXES['haip']}true": True, f"{PREFIXES['haip']}false": False}
"""JSON for a haip:TruthValue; haip:unknown (or no value) is null."""


def _select(store: engine.Backend, name: str) -> list[dict[str, Any]]:
    return store.select(resources.query("report", name))


@lru_cache(maxsize=65536)
def _decoded(item: str) -> str:
    """A value the report queries encoded with ENCODE_FOR_URI (the same few recur across patients)."""
    return unquote(item)


@lru_cache(maxsize=65536)
def _reason(item: str) -> tuple[int, str]:
    """(display order, reason) of an "order:encoded-reason" item of explanation-reasons."""
    order, value = item.split(":", 1)
    return int(order), unquote(value)


def records(store: engine.Backend) -> dict[str, Record]:
    """Output-contract records by patient IRI (without `patient`, `validation` and `source`)."""
    out: dict[str, Record] = {}
    for row in _select(store, "patient-decisions"):
        out[row["patient"]] = {
            "verdict": row["verdict"],
            "conditions": [],
            "statements": {},
            "flags": [],
            "clinical_risk_score": row["score"],
        }
    for row in _select(store, "statement-decisions"):
        entry: Record = {"status": row["status"], "reasons": []}
        if row["statement"] in ("S1", "S2") and row["status"] != "not-applicable":
            entry["met"] = TRUTH.get(row["met"])
        if row["exception"]:
            entry["exception"] = row["exception"]
        if row["overriddenBy"]:
            entry["overridden_by"] = row["overriddenBy"]
        out[row["patient"]]["statements"][row["statement"]] = entry
    for row in _select(store, "explanation-reasons"):
        ordered = sorted(_reason(item) for item in row["values"].split(" "))
        statement = out[row["patient"]]["statements"][row["statement"]]
        statement["reasons"] = list(dict.fromkeys(value for _order, value in ordered))
    for row in _select(store, "explanation-interpretations"):
        statement = out[row["patient"]]["statements"][row["statement"]]
        statement["interpretations"] = sorted({_decoded(value) for value in row["values"].split(" ")})
    for kind in ("missing", "conflicts"):
        for row in _select(store, f"explanation-{kind}"):
            values = out[row["patient"]]["statements"][row["statement"]].setdefault(kind, [])
            if row["value"] not in values:
                values.append(row["value"])
    for record in out.values():
        record["statements"] = {s: record["statements"][s] for s in STATEMENTS}
        for statement in record["statements"].values():
            for field in ("missing", "conflicts"):
                if field in statement:
                    statement[field].sort()
            if statement["status"] == "undetermined":
                statement.setdefault("missing", [])
                statement.setdefault("conflicts", [])
    for row in _select(store, "patient-conditions"):
        out[row["patient"]]["conditions"].append(row["condition"])
    for row in _select(store, "patient-flags"):
        out[row["patient"]]["flags"].append(row["flag"])
    return out


def conflicts(store: engine.Backend) -> dict[str, list[dict[str, str]]]:
    """Conflict warnings by patient IRI."""
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in sorted(_select(store, "patient-conflicts"), key=lambda r: (r["patient"], r["conflict"])):
        out[row["patient"]].append(
            {
                "severity": "warning",
                "key": row["key"],
                "message": row["message"] + " The case is decided with these facts unknown.",
                "shape": f"{PREFIXES['haipsh']}Conflict",
                "conflict": row["conflict"],
            }
        )
    return out


def decision_graph(store: engine.Backend) -> bytes:
    """The decisions with their provenance (queries/report/decision-graph.rq) as N-Triples."""
    out = ox.Store()
    out.load(store.construct(resources.query("report", "decision-graph")), format=ox.RdfFormat.N_TRIPLES)
    return engine.ntriples(out)
