"""Decide each distinct rule input once: the families' caches, next to the profile cache (engine.py).

A rule family (footprints.py) reads only the case-sheet keys of its footprint. Two patients who agree
on those keys get the same conclusions from its rules, up to their own IRIs. So a batch of case sheets is
decided by running each family's real rules (queries/rules) in Oxigraph over one stand-in patient per
footprint value not seen before, and reusing the conclusions for every patient with that value:

1. each patient's value for each family: its footprint keys' values (and whether the nodes it reads are
   there at all, for the keys whose values it never reads);
2. for the values not in the cache, one stand-in case sheet each (those keys only), converted and loaded
   into a named graph per family, next to the knowledge base; each family's rules run stage by stage
   over their own graph only, then the per-assessment rules (classify) over each graph;
3. what the report needs of a patient is read once over all stand-ins (the classes and fact assessments
   of its profile, the explanations of each assessment, flags, score and conflicts), kept relative to the
   stand-in's IRI, and cached;
4. a patient's parts are the union of its families' parts; its profile (classes and assessments) is
   decided once per profile (engine.decide_profiles) and its record built by report.build_record.

A family whose footprint cannot be proven is decided per patient: its stand-in is the patient's whole
case sheet, and nothing is cached for it. Every cache is bounded and counts its hits and misses.
"""

from __future__ import annotations

import marshal
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

import pyoxigraph as ox

from . import casesheet, engine, footprints, report, resources
from .report import Own
from .sheet_ntriples import sheet_ntriples

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_FAMILY_ENTRIES = 110_000
"""Bound of the families' caches (entries over all families, shared equally), per process."""
LOOKUPS_BEFORE_JUDGING = 2_000
MIN_HIT_RATE = 0.1


class FamiliesOverlap(RuntimeError):
    """Two families concluded about the same thing: their parts cannot simply be joined."""


class StandInClash(RuntimeError):
    """A patient decided per patient has an IRI a stand-in could have: the batch is decided per patient."""


class BoundedCache(Generic[K, V]):
    """A least-recently-used cache with a bound, counting hits and misses (thread-safe)."""

    def __init__(self, name: str, bound: int) -> None:
        self.name = name
        self.bound = bound
        self.hits = 0
        self.misses = 0
        self.seconds = 0.0
        """Time spent making the values missed (for a family: converting, loading and running its rules)."""
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value cached for `key` (counted as a hit), or None (not counted: see miss)."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self.hits += 1
                self._entries.move_to_end(key)
            return value

    def miss(self, reused: bool = False) -> None:
        """Count a lookup that found nothing: a miss, or a hit if its value is being made for an earlier
        lookup of the same batch (`reused`)."""
        with self._lock:
            if reused:
                self.hits += 1
            else:
                self.misses += 1

    def worth_keeping(self) -> bool:
        """Whether new values are worth keeping: not when, after enough lookups, almost none was found
        (a family that reads a measurement with one decimal, say). Its values are still made, just not
        kept, so memory holds what is reused."""
        looked = self.hits + self.misses
        return looked < LOOKUPS_BEFORE_JUDGING or self.hits >= looked * MIN_HIT_RATE

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.bound:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def info(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "size": len(self._entries),
            "bound": self.bound,
            "seconds": round(self.seconds, 3),
        }


_FAMILIES: dict[int, BoundedCache[bytes, FamilyResult]] = {}
"""One cache per family (by index), each bounded by an equal share of MAX_FAMILY_ENTRIES."""


def _cache(family: int) -> BoundedCache[bytes, FamilyResult]:
    found = _FAMILIES.get(family)
    if found is None:
        plans = _plans()
        bound = MAX_FAMILY_ENTRIES // max(1, len(plans))
        found = _FAMILIES.setdefault(family, BoundedCache(plans[family].family.name, bound))
    return found


@dataclass(frozen=True)
class FamilyResult:
    """What one family's rules concluded about a stand-in, with IRIs relative to the stand-in's IRI."""

    classes: tuple[str, ...]
    assessments: tuple[tuple[str, str, str], ...]
    """(relative IRI, fact, truth value) of the assessments the profile stages read."""
    own: tuple[tuple[str, Own], ...]
    """What each assessment adds to an explanation, by relative IRI."""
    flags: tuple[str, ...]
    score: Any
    conflicts: tuple[tuple[str, str | None, str], ...]
    """(conflict slug, case-sheet key or None, message)."""
    # sorted tuples, not sets: thousands are kept, and a tuple takes a fraction of a set's memory


@dataclass
class Parts:
    """A patient's conclusions, gathered from its families."""

    classes: set[str] = field(default_factory=set)
    assessments: set[tuple[str, str, str]] = field(default_factory=set)
    own: dict[str, Own] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    score: Any = None
    conflicts: set[tuple[str, str | None, str]] = field(default_factory=set)

    def add(self, result: FamilyResult) -> None:
        """Add one family's part. Two families never conclude about the same assessment, nor both give a
        score (each fact and the score have one rule); if they did, joining their parts here could differ
        from SPARQL's union, so the batch is decided per patient instead (evaluate.decide_batch)."""
        self.classes.update(result.classes)
        self.assessments.update(result.assessments)
        for relative, part in result.own:
            if self.own.setdefault(relative, part) is not part:
                raise FamiliesOverlap(f"two families explain the assessment {relative}")
        self.flags.update(result.flags)
        if result.score is not None:
            if self.score is not None:
                raise FamiliesOverlap("two families give a clinical risk score")
            self.score = result.score
        self.conflicts.update(result.conflicts)


@dataclass(frozen=True)
class _Plan:
    """How to find one family's input in a case sheet."""

    index: int
    family: footprints.Family
    values: tuple[str, ...]
    """The keys whose values the family reads (sorted); None for a family decided per patient."""
    presences: tuple[tuple[str, ...], ...]
    """Groups of keys of which the family reads only whether any has a value (sorted)."""


@cache
def _plans() -> tuple[_Plan, ...]:
    found = footprints.families()
    return tuple(
        _Plan(
            i,
            family,
            tuple(sorted(family.footprint.values)) if family.footprint is not None else (),
            tuple(sorted(tuple(sorted(g)) for g in family.footprint.presences))
            if family.footprint is not None
            else (),
        )
        for i, family in enumerate(found.families)
    )


def usable() -> str | None:
    """None if the batch path can be used with this knowledge base, else why not."""
    return footprints.families().why_not


def _present(sheet: Mapping[str, Any], key: str) -> bool:
    return sheet.get(key) is not None


def _input(plan: _Plan, sheet: Mapping[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """A family's input in a case sheet (its cache key) and the stand-in case sheet that has it (without
    its id)."""
    standin = {key: sheet[key] for key in plan.values if _present(sheet, key)}
    bits = []
    for group in plan.presences:
        present = [key for key in group if _present(sheet, key)]
        bits.append(bool(present))
        if present and not any(key in standin for key in group):
            standin[present[0]] = sheet[present[0]]  # any value: the family never reads it, only the node
    # marshal (in C) keeps apart what converts apart (True and 1, 1 and 1.0, -0.0 and 0.0) and takes
    # integers of any size (orjson refuses those past 64 bits)
    key = marshal.dumps(([(k, standin[k]) for k in plan.values if k in standin], bits), 2)
    return key, standin


def _standin_id(family: int, number: int) -> str:
    return f"{_STANDIN}{family:03d}-{number:08d}"


_STANDIN = "standin-"
MAX_KEY_BYTES = 4096
"""A family input longer than this (a huge free text, a long list) is decided but not kept: the caches
are bounded in entries, and this bounds each entry."""


def decide(sheets: Sequence[Mapping[str, Any]]) -> list[Parts]:
    """Each case sheet's conclusions (`sheets` have been validated and convert cleanly)."""
    plans = _plans()
    parts = [Parts() for _ in sheets]
    waiting: dict[str, list[tuple[int, int, bytes | None]]] = {}
    """stand-in IRI -> (patient index, family index, cache key or None: not cached)"""
    standins: dict[int, list[tuple[str, Mapping[str, Any]]]] = {}
    new_keys: dict[tuple[int, bytes], str] = {}
    for i, sheet in enumerate(sheets):
        for plan in plans:
            if plan.family.footprint is None:  # not proven: decided per patient, on its whole sheet
                iri = str(casesheet.patient_iri(sheet["id"]))
                if sheet["id"].startswith(_STANDIN):
                    raise StandInClash(f"a patient's id {sheet['id']!r} could be a stand-in's")
                standins.setdefault(plan.index, []).append((iri, sheet))
                waiting.setdefault(iri, []).append((i, plan.index, None))
                continue
            key, standin = _input(plan, sheet)
            found = _cache(plan.index).get(key)
            if found is not None:
                parts[i].add(found)
                continue
            named = new_keys.get((plan.index, key))
            _cache(plan.index).miss(reused=named is not None)
            if named is None:
                ident = _standin_id(plan.index, len(new_keys))
                named = new_keys[plan.index, key] = str(casesheet.patient_iri(ident))
                standins.setdefault(plan.index, []).append((named, {"id": ident, **standin}))
            waiting.setdefault(named, []).append((i, plan.index, key))
    if standins:
        results = _run(standins)
        for iri, users in waiting.items():
            result = results[iri]
            for i in {
                i for i, _family, _cached in users
            }:  # a patient's own IRI serves all its unproven families
                parts[i].add(result)
            for _i, family, cached in users:
                if cached is not None and len(cached) <= MAX_KEY_BYTES and _cache(family).worth_keeping():
                    _cache(family).put(cached, result)
    return parts


def _graph(family: int) -> ox.NamedNode:
    return ox.NamedNode(f"urn:haip:family:{family}")


def _run(standins: Mapping[int, Sequence[tuple[str, Mapping[str, Any]]]]) -> dict[str, FamilyResult]:
    """Run each family's rules over its stand-ins (in its own graph, next to the knowledge base) and read
    what the report needs of every stand-in."""
    store = ox.Store()
    store.load(engine.knowledge_base_ntriples(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
    plans = _plans()
    node_rules = footprints.families().node_rules
    stages = engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING
    for index, group in standins.items():
        started = time.perf_counter()
        graph = _graph(index)
        data = b"".join(_ntriples(sheet) for _iri, sheet in group)
        store.load(data, format=ox.RdfFormat.N_TRIPLES, to_graph=graph)
        scope = [ox.DefaultGraph(), graph]
        rules = plans[index].family.rules
        for stage in stages:
            texts = [
                text
                for name, text in engine.rules(stage)
                if (stage, name) in rules or (stage, name) in node_rules
            ]
            if texts:
                found = b"".join(_construct(store, text, scope) for text in texts)
                store.load(found, format=ox.RdfFormat.N_TRIPLES, to_graph=graph, lenient=True)
        _cache(index).seconds += time.perf_counter() - started
    started = time.perf_counter()
    read = _read(store, {iri for group in standins.values() for iri, _sheet in group})
    _READING.seconds += time.perf_counter() - started
    return read


_READING: BoundedCache[None, None] = BoundedCache("reading stand-ins (all families)", 0)
"""Only its `seconds`: the time spent reading what the report needs of every stand-in."""


def _construct(store: ox.Store, query: str, scope: list[Any]) -> bytes:
    result = store.query(query, default_graph=scope)
    try:
        if not isinstance(result, ox.QueryTriples):
            raise TypeError("a rule must be a CONSTRUCT query")
        return result.serialize(format=ox.RdfFormat.N_TRIPLES) or b""
    finally:
        del result


def _ntriples(sheet: Mapping[str, Any]) -> bytes:
    data = sheet_ntriples(dict(sheet))
    if data is None:  # a part of a case sheet that converts cleanly converts cleanly
        raise ValueError(f"a stand-in case sheet does not convert: {sheet!r}")
    return data


def _select(store: ox.Store, kind: str, name: str) -> list[dict[str, Any]]:
    result = store.query(resources.query(kind, name), use_default_graph_as_union=True)
    try:
        if not isinstance(result, ox.QuerySolutions):
            raise TypeError("a report query must be a SELECT query")
        return engine.plain_rows(result.serialize(format=ox.QueryResultsFormat.JSON) or b"")
    finally:
        del result


def _read(store: ox.Store, iris: set[str]) -> dict[str, FamilyResult]:
    """What the report needs of every stand-in (the profile's classes and assessments, the explanations,
    flags, score and conflicts), relative to its IRI."""
    found: dict[str, dict[str, Any]] = {
        iri: {
            "classes": set(),
            "assessments": set(),
            "own": {},
            "flags": set(),
            "score": None,
            "conflicts": set(),
        }
        for iri in iris
    }

    lengths = sorted({len(iri) for iri in iris}, reverse=True)

    def owner(iri: str) -> tuple[str, str]:
        for length in lengths:
            head = iri[:length]
            if head in found and (len(iri) == length or iri[length] == "/"):
                return head, iri[length:]
        raise RuntimeError(f"a rule concluded about {iri}, which is not under a patient's IRI")

    for row in _select(store, "engine", "patient-classes"):
        found[row["patient"]]["classes"] |= {sys.intern(c) for c in row["classes"].split(" ")}
    for row in _select(store, "engine", "patient-assessments"):
        patient, items = row["patient"], row["items"].split(" ")
        for assessment, fact, value in zip(items[0::3], items[1::3], items[2::3], strict=True):
            head, relative = owner(assessment)
            if head != patient:
                raise RuntimeError(f"{assessment} is about {patient} but named under {head}")
            found[patient]["assessments"].add((sys.intern(relative), sys.intern(fact), sys.intern(value)))
    for row in _select(store, "report", "assessment-explanations"):
        head, relative = owner(row["assessment"])
        found[head]["own"][sys.intern(relative)] = report.own(row["items"])
    for row in _select(store, "report", "patient-flags"):
        found[row["patient"]]["flags"].add(row["flag"])
    for row in _select(store, "report", "patient-scores"):
        found[row["patient"]]["score"] = row["score"]
    for row in _select(store, "report", "patient-conflicts"):
        found[row["patient"]]["conflicts"].add((row["conflict"], row["key"], row["message"]))
    return {
        iri: FamilyResult(
            tuple(sorted(parts["classes"])),
            tuple(sorted(parts["assessments"])),
            tuple(sorted(parts["own"].items())),
            tuple(sorted(parts["flags"])),
            parts["score"],
            tuple(sorted(parts["conflicts"], key=lambda c: (c[0], c[1] or "", c[2]))),
        )
        for iri, parts in found.items()
    }


def records(
    sheets: Sequence[Mapping[str, Any]], with_facts: bool = False
) -> tuple[list[report.Record], list[list[dict[str, Any]]]]:
    """Each case sheet's record (without `patient`, `validation`, `source`; with `with_facts`, with its
    "facts", report.facts) and conflict warnings."""
    parts = decide(sheets)
    profiles = [(frozenset(p.classes), frozenset(p.assessments)) for p in parts]
    plans = {profile: report.cached_plan(profile) for profile in set(profiles)}
    new = [profile for profile, plan in plans.items() if plan is None]
    _PROFILES.hits += len(profiles) - len(new)
    _PROFILES.misses += len(new)
    if new:  # decided now; the plan is kept (report.plan), the rows it is made from are not
        started = time.perf_counter()
        decisions = engine.decide_profiles(new, with_triples=False, keep=False)
        for profile in new:
            plans[profile] = report.plan(profile, decisions[profile])
        _PROFILES.seconds += time.perf_counter() - started
    out = []
    warnings = []
    for profile, part in zip(profiles, parts, strict=True):
        plan = plans[profile]
        assert plan is not None
        shown = report.facts(part.assessments) if with_facts else None
        out.append(report.build_record(plan, part.own.get, sorted(part.flags), part.score, shown))
        warnings.append(report.warnings(sorted(part.conflicts)))
    return out, warnings


_PROFILES: BoundedCache[None, None] = BoundedCache("profiles", engine.MAX_PROFILES)
"""Only its counts: the plans themselves are report.py's (report.cached_plan)."""


def clear() -> None:
    """Empty every family's cache (and its counts)."""
    _FAMILIES.clear()


def cache_info() -> dict[str, dict[str, int]]:
    """Each cache's hits, misses, size and bound in this process: every family's, the profiles' (a
    patient whose profile was decided before, or earlier in its batch, is a hit)."""
    info = {f"family {cache.name}": cache.info() for _index, cache in sorted(_FAMILIES.items())}
    info["reading stand-ins"] = {**_READING.info(), "size": 0, "bound": 0}
    info["profiles"] = {**_PROFILES.info(), "size": report.plan_count()}
    return info
