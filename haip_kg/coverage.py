"""What the hand-written test cases cover: statement x status, verdicts, interpretations (`haip-kg check`).

Each case (<id>.json beside <id>.expected.json) declares what it is about in its case sheet, a key the
converter never reads:

    "_covers": {"statements": ["S3b"], "interpretations": ["adjuvant-not-a-metastatic-line"]}

A native RDF case (<id>.ttl) has no case sheet to hold it, so its expected file holds it. A declared
statement is covered when the expected output pins its status; a declared interpretation when the expected
output relies on it (it is in some statement's "interpretations"). Declared coverage that the expected
output does not show, or a slug the knowledge base does not have, is an error; a statement status, a
verdict or an interpretation that no case reaches is a gap, listed as a warning.

The statements, statuses, verdicts and interpretations counted over are the knowledge base's
(queries/report/statements.rq and coverage-terms.rq), never a list held here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import Graph
from rdflib.query import ResultRow

from . import report, resources
from .namespaces import HAIP

EXPECTED_SUFFIX = ".expected.json"


@dataclass(frozen=True)
class Terms:
    """What coverage is counted over, by slug, from the knowledge base."""

    statements: tuple[str, ...]
    statuses: tuple[str, ...]
    verdicts: tuple[str, ...]
    interpretations: tuple[str, ...]


def terms(graph: Graph) -> Terms:
    """The knowledge base's statements (in output order) and, from `graph` (the knowledge-base files),
    its statuses, verdicts and interpretations (by slug)."""
    by_kind: dict[str, list[str]] = {
        str(HAIP.Status): [],
        str(HAIP.Verdict): [],
        str(HAIP.Interpretation): [],
    }
    for row in graph.query(resources.query("report", "coverage-terms")):
        assert isinstance(row, ResultRow), "coverage-terms is a SELECT query"
        by_kind[str(row.kind)].append(str(row.slug))
    return Terms(
        report.statements(),
        tuple(by_kind[str(HAIP.Status)]),
        tuple(by_kind[str(HAIP.Verdict)]),
        tuple(by_kind[str(HAIP.Interpretation)]),
    )


@dataclass(frozen=True)
class Coverage:
    """The coverage of one folder of cases; counts are numbers of cases."""

    folder: Path | None
    """The folder read (None: no folder of cases exists, as in an installed wheel)."""
    terms: Terms
    cases: int
    declared_statements: Mapping[str, int]
    reached: Mapping[tuple[str, str], int]
    """(statement, status): cases whose expected output gives the statement that status."""
    verdicts: Mapping[str, int]
    declared_interpretations: Mapping[str, int]
    used_interpretations: Mapping[str, int]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Case:
    name: str
    statuses: Mapping[str, str]
    verdict: str
    used: frozenset[str]
    declared: Mapping[str, tuple[str, ...]] | None
    errors: tuple[str, ...]


def _read(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return None, f"{path.name}: not readable JSON ({error})"


def _declared(value: Any, where: str) -> tuple[Mapping[str, tuple[str, ...]] | None, tuple[str, ...]]:
    """A `_covers` value as {"statements": (...), "interpretations": (...)}, or the error it makes."""
    kinds = ("statements", "interpretations")
    if (
        not isinstance(value, dict)
        or set(value) - set(kinds)
        or not all(
            isinstance(value.get(k, []), list) and all(isinstance(s, str) for s in value.get(k, []))
            for k in kinds
        )
    ):
        return None, (
            f'{where}: _covers must be {{"statements": [slugs], "interpretations": [slugs]}}, not {value!r}',
        )
    return {k: tuple(value.get(k, [])) for k in kinds}, ()


def _case(expected_path: Path) -> _Case:
    """One case: its expected outcome and what it declares (case sheet first, else the expected file)."""
    name = expected_path.name.removesuffix(EXPECTED_SUFFIX)
    expected, unreadable = _read(expected_path)
    if unreadable is not None or not isinstance(expected, dict):
        return _Case(name, {}, "", frozenset(), None, (unreadable or f"{expected_path.name}: not an object",))
    statements = expected.get("statements")
    statements = statements if isinstance(statements, dict) else {}
    statuses = {s: str(e.get("status")) for s, e in statements.items() if isinstance(e, dict)}
    used = frozenset(
        str(i)
        for e in statements.values()
        if isinstance(e, dict) and isinstance(e.get("interpretations", []), list)
        for i in e.get("interpretations", [])
    )
    sheet_path = expected_path.with_name(name + ".json")
    sheet, unreadable = _read(sheet_path) if sheet_path.is_file() else ({}, None)
    if unreadable is not None:
        return _Case(name, statuses, str(expected.get("verdict")), used, None, (unreadable,))
    in_sheet = isinstance(sheet, dict) and "_covers" in sheet
    if in_sheet and "_covers" in expected:
        error = f"{name}: _covers is in both {sheet_path.name} and {expected_path.name}; keep one"
        return _Case(name, statuses, str(expected.get("verdict")), used, None, (error,))
    if in_sheet:
        declared, errors = _declared(sheet["_covers"], sheet_path.name)
    elif "_covers" in expected:
        declared, errors = _declared(expected["_covers"], expected_path.name)
    else:
        declared, errors = None, ()
    return _Case(name, statuses, str(expected.get("verdict")), used, declared, errors)


def _problems(case: _Case, kb: Terms) -> tuple[list[str], list[str]]:
    """A case's errors (declared but not shown, unknown slugs, an outcome the KB does not know) and
    warnings (nothing declared)."""
    if case.errors:
        return list(case.errors), []
    errors = []
    for statement, status in sorted(case.statuses.items()):
        if statement not in kb.statements:
            errors.append(f"{case.name}: its expected output has statement {statement}, unknown to the KB")
        elif status not in kb.statuses:
            errors.append(
                f"{case.name}: its expected {statement} status {status!r} is not a status of the KB"
            )
    if case.verdict not in kb.verdicts:
        errors.append(f"{case.name}: its expected verdict {case.verdict!r} is not a verdict of the KB")
    if case.declared is None:
        return errors, [f"{case.name}: declares no _covers"]
    for statement in case.declared["statements"]:
        if statement not in kb.statements:
            errors.append(f"{case.name}: _covers names statement {statement!r}, unknown to the KB")
        elif statement not in case.statuses:
            errors.append(f"{case.name}: declares {statement}, but its expected output gives it no status")
    for interpretation in case.declared["interpretations"]:
        if interpretation not in kb.interpretations:
            errors.append(f"{case.name}: _covers names interpretation {interpretation!r}, unknown to the KB")
        elif interpretation not in case.used:
            errors.append(
                f"{case.name}: declares interpretation {interpretation}, "
                "but its expected output does not rely on it"
            )
    return errors, []


def measure(folder: Path | None, kb: Terms) -> Coverage:
    """The coverage of the cases in `folder` (every <id>.expected.json and its case) over the terms of
    the knowledge base; a folder that does not exist holds no cases."""
    if folder is None or not folder.is_dir():
        return Coverage(None, kb, 0, {}, {}, {}, {}, {}, (), ())
    cases = [_case(path) for path in sorted(folder.glob("*" + EXPECTED_SUFFIX))]
    errors: list[str] = []
    warnings: list[str] = []
    for case in cases:
        case_errors, case_warnings = _problems(case, kb)
        errors += case_errors
        warnings += case_warnings
    declared = [c.declared for c in cases if c.declared is not None]
    reached = Counter((s, status) for c in cases for s, status in c.statuses.items())
    verdicts = Counter(c.verdict for c in cases)
    used = Counter(i for c in cases for i in c.used)
    warnings += [
        f"gap: no case reaches {statement} {status}"
        for statement in kb.statements
        for status in kb.statuses
        if not reached[statement, status]
    ]
    warnings += [f"gap: no case reaches the verdict {v}" for v in kb.verdicts if not verdicts[v]]
    warnings += [f"gap: no case relies on the interpretation {i}" for i in kb.interpretations if not used[i]]
    return Coverage(
        folder,
        kb,
        len(cases),
        Counter(s for d in declared for s in d["statements"]),
        reached,
        verdicts,
        Counter(i for d in declared for i in d["interpretations"]),
        used,
        tuple(errors),
        tuple(warnings),
    )


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """A Markdown table, its columns padded to line up in a terminal."""
    widths = [max(len(row[n]) for row in [header, *rows]) for n in range(len(header))]
    rule = tuple("-" * w for w in widths)
    return [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in [header, rule, *rows]
    ]


def table(coverage: Coverage) -> str:
    """The coverage as plain text with Markdown tables: statement x status, verdicts, interpretations
    (declared by / used by how many cases), then the gaps and the cases that declare nothing."""
    if coverage.folder is None:
        return "Test-case coverage: no cases found (no tests/cases folder; use --cases DIR)\n"
    kb = coverage.terms
    lines = [f"Test-case coverage: {coverage.cases} case(s) in {coverage.folder}", ""]
    lines += _table(
        ("statement", "declared", *kb.statuses),
        [
            (
                s,
                str(coverage.declared_statements.get(s, 0)),
                *(str(coverage.reached.get((s, t), 0)) for t in kb.statuses),
            )
            for s in kb.statements
        ],
    )
    lines.append("")
    lines += _table(("verdict", "cases"), [(v, str(coverage.verdicts.get(v, 0))) for v in kb.verdicts])
    lines.append("")
    lines += _table(
        ("interpretation", "declared", "used"),
        [
            (
                i,
                str(coverage.declared_interpretations.get(i, 0)),
                str(coverage.used_interpretations.get(i, 0)),
            )
            for i in kb.interpretations
        ],
    )
    lines += ["", *(f"WARN  {w}" for w in coverage.warnings)] if coverage.warnings else []
    return "".join(line + "\n" for line in lines)


def as_json(coverage: Coverage) -> dict[str, Any]:
    """The coverage as JSON for tools (same counts as `table`)."""
    kb = coverage.terms
    return {
        "folder": None if coverage.folder is None else str(coverage.folder),
        "cases": coverage.cases,
        "statements": {
            s: {
                "declared": coverage.declared_statements.get(s, 0),
                "statuses": {t: coverage.reached.get((s, t), 0) for t in kb.statuses},
            }
            for s in kb.statements
        },
        "verdicts": {v: coverage.verdicts.get(v, 0) for v in kb.verdicts},
        "interpretations": {
            i: {
                "declared": coverage.declared_interpretations.get(i, 0),
                "used": coverage.used_interpretations.get(i, 0),
            }
            for i in kb.interpretations
        },
        "errors": list(coverage.errors),
        "warnings": list(coverage.warnings),
    }
