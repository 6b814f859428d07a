"""Read decisions out of the store (queries/report) into the JSON output contract."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@cache
def _readings() -> tuple[str, ...]:
    return tuple(row["reading"] for row in _select(_knowledge_base(), "readings"))


def consensus() -> dict[str, Any]:
    """A record's "consensus" entry: the statements' source (DOI, short citation), the decision policy and,
    when alternative readings are in force, their slugs; read from the knowledge base once per process
    (queries/report/consensus.rq, readings.rq); a new dict each call."""
    entry: dict[str, Any] = dict(_consensus())
    if _readings():
        entry["readings"] = list(_readings())
    return entry


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


def records(store: engine.Backend, with_facts: bool = False) -> dict[str, Record]:
    """Output-contract records by patient IRI (without `patient`, `validation` and `source`); with
    `with_facts`, each with its "facts" (see `facts`)."""
    if isinstance(store, engine.Profiled):
        return _records_by_profile(store, with_facts)
    return _records_in_place(store, with_facts)


@cache
def _shown_facts() -> tuple[tuple[str, str], ...]:
    """(IRI, slug) of the facts explanations show, in display order (queries/report/facts.rq)."""
    return tuple((row["fact"], row["slug"]) for row in _select(_knowledge_base(), "facts"))


def facts(assessments: Iterable[tuple[str, str, str]]) -> dict[str, bool | None]:
    """A record's "facts": the truth value (true, false; null when unknown or not assessed) of each fact
    that explanations show, by slug in display order, from the patient's fact assessments as (IRI
    relative to the patient, fact, truth value), as the profiles hold them. Two assessments of one fact
    that disagree make it unknown."""
    values: dict[str, set[str]] = defaultdict(set)
    for _relative, fact, value in assessments:
        values[fact].add(value)
    return {
        slug: TRUTH.get(next(iter(values[fact]))) if len(values[fact]) == 1 else None
        for fact, slug in _shown_facts()
    }


_Links = tuple[tuple[tuple[str, ...], bool], ...]


@dataclass(frozen=True)
class Plan:
    """A profile's decisions, ready to be combined with one patient's own fact assessments."""

    verdict: str
    conditions: tuple[str, ...]
    statements: tuple[tuple[str, Record, bool, frozenset[str] | None, _Links], ...]
    """Per statement, in output order: its slug; its entry before the patient's part (status, met,
    exception, overridden_by); whether it is undetermined; the interpretations of the decision itself
    (None: none); and the fact assessments it used (IRIs relative to the patient), with whether their
    missing keys and conflicts are reported (?unsettled in explanation-links)."""


_PLANS: dict[engine.Profile, Plan] = {}


@dataclass(frozen=True)
class Own:
    """What one fact assessment adds to the explanation of a decision that used it."""

    reasons: tuple[tuple[int, str], ...]
    interpretation: tuple[str, ...]
    missing: tuple[str, ...]
    conflict: tuple[str, ...]


def own(items: str) -> Own:
    """An assessment's part of an explanation, from its assessment-explanations row's ?items."""
    parts: dict[str, set[Any]] = {
        "reason": set(),
        "interpretation": set(),
        "missing": set(),
        "conflict": set(),
    }
    for item in items.split(" "):
        kind, value = item.split(":", 1)
        parts[kind].add(_reason(value) if kind == "reason" else _decoded(value))
    return Own(*(tuple(sorted(parts[k])) for k in ("reason", "interpretation", "missing", "conflict")))


def cached_plan(profile: engine.Profile) -> Plan | None:
    """The plan kept for a profile, if any."""
    return _PLANS.get(profile)


def plan_count() -> int:
    return len(_PLANS)


def plan(profile: engine.Profile | None, decision: engine.ProfileDecision) -> Plan:
    """A profile's plan (kept per profile; `profile` None: not kept)."""
    known = _PLANS.get(profile) if profile is not None else None
    if known is not None:
        return known
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
    made = Plan(
        verdict,
        tuple(row["condition"] for row in rows["patient-conditions"]),
        tuple(
            (s, entry, undetermined, interpretations.get(s), tuple(links[s]))
            for s, (entry, undetermined) in _in_order(entries).items()
        ),
    )
    if profile is not None:
        if len(_PLANS) >= engine.MAX_PROFILES:
            _PLANS.clear()  # bounded memory
        _PLANS[profile] = made
    return made


def build_record(
    plan: Plan,
    own_of: Callable[[str], Own | None],
    flags: list[str],
    score: Any,
    shown_facts: dict[str, bool | None] | None = None,
) -> Record:
    """A patient's record from its profile's plan and what each of its fact assessments adds (`own_of`,
    by the IRI the plan's links name): the join of decisions and the assessments they used, the same as
    the explanation-* queries make in SPARQL (a test checks that they agree). `shown_facts` (see `facts`),
    when given, is the record's "facts"."""
    statements: Record = {}
    for slug, base, undetermined, decision_interpretations, links in plan.statements:
        entry = dict(base)
        used: set[tuple[int, str]] = set()
        interpretations = set(decision_interpretations) if decision_interpretations is not None else None
        missing: set[str] = set()
        conflicts: set[str] = set()
        for assessments, unsettled in links:
            for name in assessments:
                found = own_of(name)
                if found is None:
                    continue
                used.update(found.reasons)
                if found.interpretation:
                    interpretations = (interpretations or set()).union(found.interpretation)
                if unsettled:
                    missing.update(found.missing)
                    conflicts.update(found.conflict)
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
    record = {
        "verdict": plan.verdict,
        "conditions": list(plan.conditions),
        "statements": statements,
        "flags": flags,
        "clinical_risk_score": score,
    }
    if shown_facts is not None:
        record["facts"] = shown_facts
    return record


def _patient_parts(store: engine.Backend) -> tuple[dict[str, Own], dict[str, list[str]], dict[str, Any]]:
    """Each assessment's part of an explanation (by IRI), each patient's flags and score."""
    owns = {row["assessment"]: own(row["items"]) for row in _select(store, "assessment-explanations")}
    scores = {row["patient"]: row["score"] for row in _select(store, "patient-scores")}
    flags: dict[str, list[str]] = defaultdict(list)
    for row in _select(store, "patient-flags"):
        flags[row["patient"]].append(row["flag"])
    return owns, flags, scores


def _records_by_profile(store: engine.Profiled, with_facts: bool) -> dict[str, Record]:
    """The records, from each patient's profile's decisions (engine.decide_profiles) and its own fact
    assessments."""
    owns, flags, scores = _patient_parts(store)
    return {
        patient: build_record(
            plan(profile, store.decisions[profile]),
            lambda relative, patient=patient: owns.get(patient + relative),  # type: ignore[misc]
            flags.get(patient, []),
            scores.get(patient),
            facts(profile[1]) if with_facts else None,
        )
        for patient, profile in store.profiles.items()
    }


def _records_in_place(store: engine.Backend, with_facts: bool) -> dict[str, Record]:
    """The records when every stage ran over every patient (the per-patient path: a SPARQL endpoint, or a
    batch whose profiles cannot be used): each patient's own decisions, read by the queries the profile
    path reads them by, and built the same way."""
    rows: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {q: [] for q in engine.PROFILE_QUERIES}
    )
    for name in engine.PROFILE_QUERIES:
        for row in _select(store, name):
            patient = row.pop("patient")
            if "assessments" in row:
                row["assessments"] = row["assessments"].split(" ")
            rows[patient][name].append(row)
    owns, flags, scores = _patient_parts(store)
    assessments: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    if with_facts:
        for row in store.select(resources.query("engine", "patient-assessments")):
            items = row["items"].split(" ")
            assessments[row["patient"]] += zip(items[0::3], items[1::3], items[2::3], strict=True)
    return {
        patient: build_record(
            plan(None, engine.ProfileDecision(None, patient_rows)),
            owns.get,
            flags.get(patient, []),
            scores.get(patient),
            facts(assessments[patient]) if with_facts else None,
        )
        for patient, patient_rows in rows.items()
    }


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


def conflicts(store: engine.Backend) -> dict[str, list[dict[str, str]]]:
    """Conflict warnings by patient IRI."""
    rows: dict[str, list[tuple[str, str | None, str]]] = defaultdict(list)
    for row in _select(store, "patient-conflicts"):
        rows[row["patient"]].append((row["conflict"], row["key"], row["message"]))
    return {patient: warnings(found) for patient, found in rows.items()}


def warnings(rows: Iterable[tuple[str, str | None, str]]) -> list[dict[str, str]]:
    """One patient's conflict warnings from its patient-conflicts rows (conflict, key, message), in order."""
    return [
        {
            "severity": "warning",
            "key": key,  # type: ignore[dict-item]
            "message": message + " The case is decided with these facts unknown.",
            "shape": f"{PREFIXES['haipsh']}Conflict",
            "conflict": conflict,
        }
        for conflict, key, message in sorted(set(rows), key=lambda r: (r[0], r[1] or "", r[2]))
    ]


def decision_graph(store: engine.Backend) -> bytes:
    """The decisions with their provenance (queries/report/decision-graph.rq) as N-Triples."""
    out = ox.Store()
    out.load(store.construct(resources.query("report", "decision-graph")), format=ox.RdfFormat.N_TRIPLES)
    return engine.ntriples(out)
