"""Read decisions out of the store (queries/report) into the JSON output contract."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any
from urllib.parse import unquote

import pyoxigraph as ox

from . import engine, resources
from .namespaces import PREFIXES

Record = dict[str, Any]
TRUTH = {f"{PREFIXES['haip']}true": True, f"{PREFIXES['haip']}false": False}
"""JSON for a haip:TruthValue; haip:unknown (or no value) is null."""


class KnowledgeBaseError(RuntimeError):
    """The knowledge base cannot be reported from as it stands (`haip-kg check` says what is missing)."""


def _select(store: engine.Backend, name: str) -> list[dict[str, Any]]:
    return store.select(resources.query("report", name))


@cache
def _knowledge_base() -> engine.Embedded:
    """The knowledge base alone (with its OWL 2 RL closure), for what the records read from it."""
    store = ox.Store()
    store.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
    return engine.Embedded(store)


@cache
def statements() -> tuple[str, ...]:
    """The slugs of the knowledge base's consensus statements in output order (queries/report/statements.rq,
    read once per process): the statements of every record, in this order."""
    rows = _select(_knowledge_base(), "statements")
    unordered = [row["statement"] for row in rows if row["order"] is None]
    if unordered:
        raise KnowledgeBaseError(
            f"statement(s) {', '.join(unordered)} without haip:statementOrder: run `haip-kg check`"
        )
    return tuple(row["statement"] for row in rows)


@cache
def _consensus() -> tuple[tuple[str, str], ...]:
    rows = _select(_knowledge_base(), "consensus")
    if len(rows) != 1:
        raise KnowledgeBaseError(
            f"{len(rows)} sources or decision policies where one is needed: run `haip-kg check`"
        )
    (row,) = rows
    return tuple((key, row[key]) for key in ("doi", "citation", "policy"))


def consensus() -> dict[str, str]:
    """A record's "consensus" entry: the statements' source (DOI, short citation) and the decision policy,
    read from the knowledge base once per process (queries/report/consensus.rq); a new dict each call."""
    return dict(_consensus())


def _in_order(decided: dict[str, Any]) -> dict[str, Any]:
    """`decided` (by statement slug) in the knowledge base's statement order; every statement must be
    there (a statement the rules cannot decide is refused by `haip-kg check`, never dropped)."""
    order = statements()
    undecided = [s for s in order if s not in decided]
    if undecided:
        raise KnowledgeBaseError(
            f"statement(s) {', '.join(undecided)} not decided (no population the rules can read): "
            "run `haip-kg check`"
        )
    return {s: decided[s] for s in order}


@lru_cache(maxsize=65536)
def _decoded(item: str) -> str:
    """A value the report queries encoded with ENCODE_FOR_URI (the same few recur across patients)."""
    return unquote(item)


@lru_cache(maxsize=65536)
def _reason(item: str) -> tuple[int, str]:
    """(display order, reason) of an "order:encoded-reason" item of explanation-reasons."""
    order, value = item.split(":", 1)
    return int(order), unquote(value)


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


def records(store: engine.Backend) -> dict[str, Record]:
    """Output-contract records by patient IRI (without `patient`, `validation` and `source`)."""
    if isinstance(store, engine.Profiled):
        return _records_by_profile(store)
    return _assemble(_read(store))


def _read(store: engine.Backend) -> _Explanations:
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


_Links = tuple[tuple[tuple[str, ...], bool], ...]


@dataclass(frozen=True)
class _Plan:
    """A profile's decisions, ready to be combined with one patient's own fact assessments."""

    verdict: str
    conditions: tuple[str, ...]
    statements: tuple[tuple[str, Record, bool, frozenset[str] | None, _Links], ...]
    """Per statement, in output order: its slug; its entry before the patient's part (status, met,
    exception, overridden_by); whether it is undetermined; the interpretations of the decision itself
    (None: none); and the fact assessments it used (IRIs relative to the patient), with whether their
    missing keys and conflicts are reported (?unsettled in explanation-links)."""


_PLANS: dict[engine.Profile, _Plan] = {}


@dataclass(frozen=True)
class _Own:
    """What one fact assessment adds to the explanation of a decision that used it."""

    reasons: set[tuple[int, str]]
    interpretation: set[str]
    missing: set[str]
    conflict: set[str]


def _plan(profile: engine.Profile, decision: engine.ProfileDecision) -> _Plan:
    plan = _PLANS.get(profile)
    if plan is not None:
        return plan
    rows = decision.rows
    entries: dict[str, tuple[Record, bool]] = {}
    for row in rows["statement-decisions"]:
        entries[row["statement"]] = (_statement_entry(row), bool(row["undetermined"]))
    interpretations = {
        row["statement"]: frozenset(_decoded(v) for v in row["values"].split(" "))
        for row in rows["explanation-interpretations"]
    }
    links: dict[str, list[tuple[tuple[str, ...], bool]]] = defaultdict(list)
    for row in rows["explanation-links"]:
        links[row["statement"]].append((tuple(row["assessments"]), bool(row["unsettled"])))
    (verdict,) = [row["verdict"] for row in rows["patient-decisions"]]
    plan = _Plan(
        verdict,
        tuple(row["condition"] for row in rows["patient-conditions"]),
        tuple(
            (s, entry, undetermined, interpretations.get(s), tuple(links[s]))
            for s, (entry, undetermined) in _in_order(entries).items()
        ),
    )
    if len(_PLANS) >= engine.MAX_PROFILES:
        _PLANS.clear()  # bounded memory
    _PLANS[profile] = plan
    return plan


def _records_by_profile(store: engine.Profiled) -> dict[str, Record]:
    """The records, from each patient's profile's decisions (engine.decide_profiles) and its own fact
    assessments: the same join of decisions and the assessments they used as the explanation-* queries
    make (a test checks the records equal those read by _read), done here because the decisions are the
    profile's."""
    own: dict[str, _Own] = {}
    for row in _select(store, "assessment-explanations"):
        parts = own[row["assessment"]] = _Own(set(), set(), set(), set())
        for item in row["items"].split(" "):
            kind, value = item.split(":", 1)
            if kind == "reason":
                parts.reasons.add(_reason(value))
            else:
                getattr(parts, kind).add(_decoded(value))
    scores = {row["patient"]: row["score"] for row in _select(store, "patient-scores")}
    flags: dict[str, list[str]] = defaultdict(list)
    for row in _select(store, "patient-flags"):
        flags[row["patient"]].append(row["flag"])
    out: dict[str, Record] = {}
    for patient, profile in store.profiles.items():
        plan = _plan(profile, store.decisions[profile])
        statements: Record = {}
        for slug, base, undetermined, decision_interpretations, links in plan.statements:
            entry = dict(base)
            used: set[tuple[int, str]] = set()
            interpretations = set(decision_interpretations) if decision_interpretations is not None else None
            missing: set[str] = set()
            conflicts: set[str] = set()
            for assessments, unsettled in links:
                for relative in assessments:
                    found = own.get(patient + relative)
                    if found is None:
                        continue
                    used |= found.reasons
                    if found.interpretation:
                        interpretations = (interpretations or set()) | found.interpretation
                    if unsettled:
                        missing |= found.missing
                        conflicts |= found.conflict
            entry["reasons"] = list(dict.fromkeys(v for _order, v in sorted(used)))
            if interpretations is not None:
                entry["interpretations"] = sorted(interpretations)
            if missing:
                entry["missing"] = sorted(missing)
            if conflicts:
                entry["conflicts"] = sorted(conflicts)
            if undetermined:
                entry.setdefault("missing", [])
                entry.setdefault("conflicts", [])
            statements[slug] = entry
        out[patient] = {
            "verdict": plan.verdict,
            "conditions": list(plan.conditions),
            "statements": statements,
            "flags": flags.get(patient, []),
            "clinical_risk_score": scores.get(patient),
        }
    return out


def _statement_entry(row: dict[str, Any]) -> Record:
    """A statement's entry from its statement-decisions row, before its reasons and explanations."""
    entry: Record = {"status": row["status"], "reasons": []}
    if row["reportsMet"]:
        entry["met"] = TRUTH.get(row["met"])
    if row["exception"]:
        entry["exception"] = row["exception"]
    if row["overriddenBy"]:
        entry["overridden_by"] = row["overriddenBy"]
    return entry


def _assemble(read: _Explanations) -> dict[str, Record]:
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
