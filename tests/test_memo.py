"""Deciding by rule family (memo.py) changes nothing: a batch of case sheets decided over one stand-in
per distinct family input, from a cold and from a warm cache, gives every record (decisions, reasons,
warnings, refusals) byte for byte as when every rule runs over every patient. And the footprints that
make this sound are checked where they come from: a family's rules give the same conclusions for two
patients who agree on its footprint, whatever else differs."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pyoxigraph as ox
import pytest
from conftest import CASES, load
from test_differential import random_case

from haip_kg import casesheet, engine, evaluate, footprints, inputs, memo, report, resources
from haip_kg.inputs import Case

EXAMPLES = resources.root() / "examples"
REGIMENS = ["FOLFOX", "mFOLFOX6", "FOLFOX + bevacizumab", "CAPOX", "XELOX+panitumumab", "FOLFIRI", "5-FU/LV"]
LABS = {"cea": ("ng/mL", 1, 900), "bilirubin_total": ("mg/dL", 0.2, 4), "albumin": ("g/dL", 2, 5)}


def varied_case(rng: random.Random, index: int) -> dict[str, Any]:
    """A random case sheet with the variety of real data: one-decimal values, free-text regimens and
    trial ids, partly filled; about one in twenty is invalid (refused) or holds a conflict (warned)."""
    case = random_case(rng, index)
    for lab, (unit, low, high) in LABS.items():
        if rng.random() < 0.5:
            case[lab] = {"value": round(rng.uniform(low, high), 1), "unit": unit}
    for key in ("largest_liver_met_cm", "disease_free_interval_months", "months_since_liver_resection"):
        if key in case:
            case[key] = round(rng.uniform(0, 30), 1)
    for line in case.get("systemic_lines", []):
        if rng.random() < 0.5:
            line["regimen"] = rng.choice(REGIMENS) + rng.choice(
                ["", " (dose reduced)", f" cycle {index % 9}"]
            )
        if "months_since_end" in line:
            line["months_since_end"] = round(rng.uniform(0, 24), 1)
    if "trial_id" in case:
        case["trial_id"] = f"NCT{rng.randrange(10**8):08d}"
    roll = rng.random()
    if roll < 0.03:
        case[rng.choice(["histology", "liver_resection", "extrahepatic_disease"])] = "unheard-of"
    elif roll < 0.05:
        case.update(liver_resection="none", resection_margin="R0")  # a conflict: decided, with a warning
    return case


def _sheets() -> list[dict[str, Any]]:
    corpus = [load(p) for p in sorted(CASES.glob("*.json")) if not p.name.endswith(".expected.json")]
    examples = [load(p) for p in sorted(EXAMPLES.glob("*.json"))]
    flat = [s for group in corpus + examples for s in (group if isinstance(group, list) else [group])]
    rng = random.Random(20261205)
    return flat + [varied_case(rng, i) for i in range(1000)]


SHEETS = _sheets()


def _cases(sheets: list[dict[str, Any]]) -> list[Case]:
    return list(inputs._from_sheets("test", sheets))


def _direct(data: bytes, store: ox.Store) -> engine.Backend:
    return engine.decide(data, store, by_profile=False)


def _by_profile(data: bytes, store: ox.Store) -> engine.Backend:
    return engine.decide(data, store)


def _records(
    cases: list[Case], decide: Callable[[bytes, ox.Store], engine.Backend], memoize: bool
) -> list[str]:
    out = []
    for start in range(0, len(cases), 250):
        batch = evaluate.decide_cases(cases[start : start + 250], decide, memoize=memoize)
        out += [json.dumps(o.record) for o in batch.outcomes]
    return out


@pytest.fixture(scope="module")
def direct() -> list[str]:
    return _records(_cases(SHEETS), _direct, memoize=False)


def test_the_cases_hold_refusals_warnings_and_variety(direct: list[str]) -> None:
    records = [json.loads(r) for r in direct]
    refused = sum("errors" in r for r in records)
    warned = sum(
        any(x["severity"] == "warning" for x in r.get("validation", {}).get("results", [])) for r in records
    )
    assert refused >= 20 and warned >= 20, (refused, warned)
    assert len(records) == len(SHEETS) >= 1050


def test_decided_by_family_the_records_are_those_of_every_rule_over_every_patient(direct: list[str]) -> None:
    memo.clear()
    cases = _cases(SHEETS)
    cold = _records(cases, _by_profile, memoize=True)
    info = memo.cache_info()
    warm = _records(cases, _by_profile, memoize=True)  # now every family input is in the cache
    again = memo.cache_info()
    assert sum(c["misses"] for c in again.values()) == sum(c["misses"] for c in info.values())
    for i, (expected, first, second) in enumerate(zip(direct, cold, warm, strict=True)):
        assert first == expected, f"case {i} (cold cache)"
        assert second == expected, f"case {i} (warm cache)"


def test_a_family_whose_footprint_is_not_proven_is_decided_per_patient(
    direct: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = footprints.families()
    unproven = tuple(
        footprints.Family(f.name, f.rules, None, "made unprovable by the test") if i % 2 else f
        for i, f in enumerate(found.families)
    )
    monkeypatch.setattr(
        footprints, "families", lambda: footprints.Families(unproven, (), found.node_rules, None)
    )
    memo._plans.cache_clear()
    memo.clear()
    try:
        cases = _cases(SHEETS[:300])
        assert _records(cases, _by_profile, memoize=True) == direct[:300]
    finally:
        memo._plans.cache_clear()
        memo.clear()


def _agreeing(plan: memo._Plan, sheet: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """`other`, changed to agree with `sheet` on what `plan`'s family reads (the footprint's values, and
    whether each node it reads only the presence of is there), and nothing else."""
    out = {k: v for k, v in other.items() if k not in plan.values}
    out.update({k: sheet[k] for k in plan.values if sheet.get(k) is not None})
    for group in plan.presences:
        mine = [k for k in group if sheet.get(k) is not None]
        theirs = [k for k in group if out.get(k) is not None]
        if not mine:
            for k in group:
                out.pop(k, None)
        elif not theirs:
            out[mine[0]] = sheet[mine[0]]
    return out


def test_a_family_concludes_alike_for_patients_who_agree_on_its_footprint() -> None:
    """Each family's rules, run over whole case sheets (not stand-ins), give the same conclusions
    (relative to the patient) for two patients who differ everywhere but on the footprint."""
    rng = random.Random(7)
    valid = [s for s in SHEETS if not any(c.errors for c in _cases([s]))]
    checked = 0
    for plan in memo._plans():
        assert plan.family.footprint is not None, plan.family.why
        for _ in range(12):
            sheet, other = rng.sample(valid, 2)
            twin = _agreeing(plan, sheet, {**other, "id": "twin"})
            if _cases([twin])[0].errors:
                continue
            assert memo._input(plan, sheet)[0] == memo._input(plan, twin)[0]
            one = {**sheet, "id": "one"}
            iri, twin_iri = str(casesheet.patient_iri("one")), str(casesheet.patient_iri("twin"))
            results = memo._run({plan.index: [(iri, one)]})
            twins = memo._run({plan.index: [(twin_iri, twin)]})
            assert results[iri] == twins[twin_iri], (
                plan.family.name,
                sheet,
                twin,
            )
            checked += 1
    assert checked >= 8 * len(memo._plans())


PREFIXES = "PREFIX haip: <https://w3id.org/haip/>\nPREFIX haipx: <https://w3id.org/haip/fact/>\n"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("CONSTRUCT { ?p haip:hasFlag ?o } WHERE { ?p ?q ?o }", "variable predicate"),
        ("CONSTRUCT { ?p haip:hasFlag ?o } WHERE { ?p haip:hasPrimaryTumour* ?o }", "property path"),
        (
            "CONSTRUCT { ?a haip:reason ?r } WHERE { ?p a haip:Patient . BIND(CONCAT('of ', STR(?p)) AS ?r)"
            " BIND(IRI(CONCAT(STR(?p), '/fact/x')) AS ?a) }",
            "?r depends on the patient's IRI",
        ),
        (
            "CONSTRUCT { ?a haip:aboutPatient ?p } WHERE { "
            "?p haip:hasSystemicTherapyHistory/haip:hasRegimenCourse ?c . "
            "BIND(IRI(CONCAT(STR(?p), '/f/', SHA256(STR(?c)))) AS ?a) }",
            "?a depends on the patient's IRI",
        ),
        (
            "CONSTRUCT { ?a haip:reason ?r } WHERE { "
            "?a haip:aboutPatient ?p ; haip:assessedFact haipx:resected . "
            "{ SELECT ?p (GROUP_CONCAT(STR(?x)) AS ?r) WHERE { ?x haip:aboutPatient ?p } GROUP BY ?p } }",
            "?r depends on the patient's IRI",
        ),
        (
            "CONSTRUCT { ?a haip:reason ?r } WHERE { ?p a haip:Patient . { SELECT ?p (SAMPLE(?x) AS ?y)"
            " WHERE { ?x haip:aboutPatient ?p } GROUP BY ?p } BIND(STR(?y) AS ?r)"
            " BIND(IRI(CONCAT(STR(?p), '/fact/x')) AS ?a) }",
            "?r concludes text that holds the patient's IRI",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient FILTER(STRLEN(STR(?p)) > 9) }",
            "condition",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { "
            "?d haip:aboutPatient ?p ; haip:status haip:Applies }",
            "concluded by status/status-statement.rq",
        ),
        ("CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a ?c }", "variable class"),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . "
            "FILTER NOT EXISTS { FILTER(STRLEN(STR(?p)) > 40) } }",
            "condition",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . "
            "FILTER NOT EXISTS { ?q haip:age 90 } }",
            "more than one patient",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . ?t haip:histology ?h }",
            "not linked",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . "
            "FILTER(STR(?p) < 'https://w3id.org/haip/case/m') }",
            "condition",
        ),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . "
            "FILTER(?p = <https://w3id.org/haip/case/P1>) }",
            "condition",
        ),
        ("CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . BIND(RAND() AS ?r) }", "RAND()"),
        (
            "CONSTRUCT { ?p haip:hasFlag haip:x } WHERE { ?p a haip:Patient . "
            "{ SELECT ?p WHERE { ?p haip:age ?a } ORDER BY ?a LIMIT 1 } }",
            "LIMIT",
        ),
    ],
)
def test_a_rule_that_reads_more_than_it_can_prove_is_not_cached(rule: str, problem: str) -> None:
    _read, problems = footprints.check_rule("flag", PREFIXES + rule)
    assert any(problem in p for p in problems), problems


def test_a_rule_that_names_its_conclusions_under_the_patient_and_reads_keys_is_proven() -> None:
    read, problems = footprints.check_rule(
        "fact",
        PREFIXES + "CONSTRUCT { ?a haip:aboutPatient ?p } WHERE { ?p haip:hasPrimaryTumour ?t . "
        "?t haip:histology ?h . BIND(IRI(CONCAT(STR(?p), '/fact/x')) AS ?a) }",
    )
    assert problems == []
    assert read.values == {"histology"}  # and the tumour node's presence: any of its keys
    assert any("histology" in group and len(group) > 1 for group in read.presences)


def test_the_generated_families_file_is_current() -> None:
    path = resources.query_dir("") / footprints.GENERATED
    assert path.read_text(encoding="utf-8") == footprints.generated_text(footprints.analyse()), (
        f"{path} is stale: run `python -m haip_kg.footprints --write`"
    )


def test_a_cache_keeps_its_bound_and_counts() -> None:
    cache: memo.BoundedCache[int, str] = memo.BoundedCache("test", 3)
    for key in range(5):
        assert cache.get(key) is None
        cache.miss(reused=False)
        cache.put(key, str(key))
    assert cache.get(0) is None and cache.get(4) == "4"
    cache.miss(reused=True)
    assert cache.info() == {"hits": 2, "misses": 5, "size": 3, "bound": 3, "seconds": 0.0}


def test_the_fast_path_gives_every_record_of_every_rule_over_every_patient(direct: list[str]) -> None:
    """The production path (evaluate.decide_batch: validation per key and value, no conversion, families)
    from cold and warm caches, against every rule over every patient, record for record."""
    from haip_kg import keyvalidation

    memo.clear()
    keyvalidation.clear_cache()
    items = [inputs.Sheet("test", i, sheet) for i, sheet in enumerate(SHEETS)]
    for _round in ("cold", "warm"):
        decided = [
            json.dumps(o.record)
            for start in range(0, len(items), 250)
            for o in evaluate.decide_batch(items[start : start + 250]).outcomes
        ]
        assert decided == direct, _round


def test_numbers_no_cache_key_can_hold_do_not_end_a_batch() -> None:
    """An integer past 64 bits converts and validates; it is decided (per patient if the fast path cannot
    take it), and the other cases of its batch too."""
    sheets = [
        {"id": "before", "liver_metastases": True},
        {"id": "huge", "liver_resection": "done", "months_since_liver_resection": 2**64},
        {"id": "after", "liver_metastases": True},
    ]
    outcomes = evaluate.decide_batch([inputs.Sheet("test", i, s) for i, s in enumerate(sheets)]).outcomes
    assert [o.case_id for o in outcomes] == ["before", "huge", "after"]
    assert "verdict" in outcomes[0].record and "verdict" in outcomes[2].record


def test_families_that_overlap_are_not_joined_and_the_batch_is_decided_per_patient(
    direct: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two families' parts about the same assessment, or two scores, are refused (SPARQL would take their
    union, a dict update would not); whatever the fast path raises, its batch is decided per patient."""
    own = report.Own(((1, "a reason"),), (), (), ())
    one = memo.FamilyResult((), (), (("/fact/x", own),), (), None, ())
    other = memo.FamilyResult((), (), (("/fact/x", report.Own(((2, "another"),), (), (), ())),), (), None, ())
    parts = memo.Parts()
    parts.add(one)
    with pytest.raises(memo.FamiliesOverlap):
        parts.add(other)
    scored = memo.Parts()
    scored.add(memo.FamilyResult((), (), (), (), 3, ()))
    with pytest.raises(memo.FamiliesOverlap):
        scored.add(memo.FamilyResult((), (), (), (), 1, ()))

    def overlapping(sheets: Any) -> Any:
        raise memo.FamiliesOverlap("test")

    monkeypatch.setattr(memo, "records", overlapping)
    items = [inputs.Sheet("test", i, sheet) for i, sheet in enumerate(SHEETS[:250])]
    decided = [json.dumps(o.record) for o in evaluate.decide_batch(items).outcomes]
    assert decided == direct[:250]
