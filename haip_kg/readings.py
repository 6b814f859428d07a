"""Deciding under alternative readings: `haip-kg evaluate --reading INTERPRETATION=ALTERNATIVE` and
`--reading-profile NAME`.

An interpretation in the authoring source may declare alternatives, each with its own IRI and its own
parameter values (haip:Reading); reading profiles group them. Choosing readings changes the knowledge base
this process decides with, and nothing else: ``queries/engine/apply-reading.ru`` puts each reading's
values in force before the knowledge base is loaded. The records then name the readings ("consensus":
{"readings": [...]}, and each interpretation entry relied on names its reading), and the decisions' IRIs
in RDF carry the readings (`/under/<reading>`), so decisions under different readings never share an IRI.
With no reading chosen everything is as endorsed, byte for byte.

The choice is per process: it must be made before the knowledge base is first read (workers are forked
after it and inherit it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.plugins.sparql import prepareQuery

from . import resources
from .namespaces import HAIP

_IN_FORCE: tuple[str, ...] = ()


class ReadingError(ValueError):
    """A reading or profile the knowledge base does not declare, or two readings of one interpretation."""


def _declared(graph: Graph) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """The knowledge base's readings (slug -> the interpretation it is an alternative to) and profiles
    (slug -> its readings)."""
    readings: dict[str, str] = {}
    profiles: dict[str, list[str]] = defaultdict(list)
    for row in graph.query(prepareQuery(resources.query("report", "reading-choices"))):
        kind, name, reading, interpretation = (str(value) for value in row)  # type: ignore[union-attr]
        readings[reading] = interpretation
        if kind == "profile":
            profiles[name].append(reading)
    return readings, {name: tuple(chosen) for name, chosen in profiles.items()}


def choose(graph: Graph, chosen: Iterable[str], profiles: Iterable[str] = ()) -> tuple[str, ...]:
    """Check the chosen readings (and the readings of the chosen profiles) against the knowledge base
    `graph` and put them in force for this process. Returns them, sorted."""
    readings, declared_profiles = _declared(graph)
    wanted: list[str] = []
    for profile in profiles:
        if profile not in declared_profiles:
            known = ", ".join(sorted(declared_profiles)) or "none"
            raise ReadingError(f"no reading profile {profile!r} in the knowledge base (profiles: {known})")
        wanted.extend(declared_profiles[profile])
    for reading in chosen:
        if reading not in readings:
            interpretation = reading.partition("=")[0]
            alternatives = sorted(r for r, i in readings.items() if i == interpretation)
            hint = (
                f"its alternatives: {', '.join(alternatives)}"
                if alternatives
                else (f"readings: {', '.join(sorted(readings)) or 'none'}")
            )
            raise ReadingError(f"no reading {reading!r} in the knowledge base ({hint})")
        wanted.append(reading)
    by_interpretation: dict[str, set[str]] = defaultdict(set)
    for reading in wanted:
        by_interpretation[readings[reading]].add(reading)
    clashes = {i: sorted(r) for i, r in by_interpretation.items() if len(r) > 1}
    if clashes:
        interpretation, both = sorted(clashes.items())[0]
        raise ReadingError(f"two readings of {interpretation} at once: {' and '.join(both)}")
    global _IN_FORCE
    _IN_FORCE = tuple(sorted(set(wanted)))
    return _IN_FORCE


def in_force() -> tuple[str, ...]:
    """The readings chosen for this process (empty: the interpretations as endorsed)."""
    return _IN_FORCE


def path() -> str:
    """The segment decisions' IRIs carry under the readings in force ("" under none)."""
    return "".join(f"/under/{reading}" for reading in _IN_FORCE)


def apply(graph: Graph) -> None:
    """Put the readings in force in the knowledge base `graph` (in place)."""
    if not _IN_FORCE:
        return
    update = resources.update("engine", "apply-reading")
    for slug in _IN_FORCE:
        (reading,) = graph.subjects(HAIP.slug, Literal(slug))
        graph.update(update, initBindings={"reading": URIRef(str(reading))})
    graph.add((BNode(), HAIP.readingPath, Literal(path())))
