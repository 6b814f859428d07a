"""`haip-kg diff OLD NEW [COHORT]`: what a change of the knowledge base does.

Each side is a knowledge-base folder, a git revision of the current repository (its tree taken out into a
temporary folder) or the current knowledge base under readings (`reading:NAME=ALT,...`, `profile:NAME`).
The report says which terms (statements, clauses, facts, parameters, interpretations, flags, conflicts and
every other haip: term), rules and shapes were added, removed or changed; how the cohort's decisions move
(decided under each side by `haip-kg evaluate` in a fresh process, so no cache sees both); and which
hand-written test cases the new side breaks. The report holds no timestamp, temporary path or set order:
two runs give the same bytes.
"""

from __future__ import annotations

import difflib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import RDF, RDFS, BNode, Graph, Literal, URIRef
from rdflib.compare import isomorphic

from . import resources
from .namespaces import HAIP

Record = dict[str, Any]

KINDS = (
    ("statement", HAIP.ConsensusStatement),
    ("clause", HAIP.Clause),
    ("fact", HAIP.Fact),
    ("parameter", HAIP.Parameter),
    ("interpretation", HAIP.Interpretation),
    ("flag", HAIP.Flag),
    ("conflict", HAIP.Conflict),
)
"""How terms are grouped in the report, by the vocabulary class their individuals belong to (subclasses
included); a term of none of them is an "other term". A class the knowledge base does not declare (e.g.
haip:Parameter before parameters exist) groups nothing."""

ABSENT = "absent"
"""A statement's status when the side has no such statement."""


class DiffError(ValueError):
    """A side or the cohort cannot be used (unknown revision, missing folder, a run that failed)."""


@dataclass(frozen=True)
class Side:
    """One side of the diff: the knowledge-base folder and the evaluate options that read it."""

    spec: str
    """As given on the command line (the report names the side by it)."""
    kb: Path
    options: tuple[str, ...] = ()
    revision: str | None = None
    """The commit, for a git revision."""


# ---------------------------------------------------------------- sides


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)


def _commit(revision: str, cwd: Path) -> str | None:
    done = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", revision + "^{commit}"], cwd)
    return done.stdout.decode().strip() if done.returncode == 0 else None


def side(spec: str, current: Path, workdir: Path, cwd: Path) -> Side:
    """The side `spec` stands for: `reading:NAME=ALT[,NAME=ALT...]` or `profile:NAME` (the knowledge base
    `current` under those readings), `git:REV` or a folder, else any revision `git rev-parse` resolves in
    the repository at `cwd` (its tree is taken out under `workdir`)."""
    if spec.startswith("reading:"):
        readings = [r for r in spec.removeprefix("reading:").split(",") if r]
        if not readings or not all("=" in r for r in readings):
            raise DiffError(f"{spec}: write reading:NAME=ALTERNATIVE[,NAME=ALTERNATIVE...]")
        return Side(spec, current, tuple(o for r in readings for o in ("--reading", r)))
    if spec.startswith("profile:"):
        name = spec.removeprefix("profile:")
        if not name:
            raise DiffError(f"{spec}: write profile:NAME")
        return Side(spec, current, ("--reading-profile", name))
    if not spec.startswith("git:") and Path(spec).exists():
        try:
            return Side(spec, resources.kb_folder(spec))
        except resources.NotAKnowledgeBase as error:
            raise DiffError(str(error)) from error
    revision = spec.removeprefix("git:")
    commit = _commit(revision, cwd) if revision else None
    if commit is None:
        raise DiffError(f"{spec}: no such folder, and not a revision of the git repository at {cwd}")
    tree = workdir / commit
    if not tree.is_dir():
        archive = _git(["archive", "--format=tar", commit], cwd)
        if archive.returncode != 0:
            raise DiffError(f"{spec}: git archive failed: {archive.stderr.decode().strip()}")
        try:
            with tarfile.open(fileobj=io.BytesIO(archive.stdout), mode="r:") as tar:
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: refuse links and paths out of the tree
                    tar.extractall(tree, filter="data")
                else:  # older Pythons: refuse every link, extract files and folders only
                    if any(member.issym() or member.islnk() for member in tar.getmembers()):
                        raise tarfile.TarError("the tree holds a link")
                    tar.extractall(tree)
        except (tarfile.TarError, OSError) as error:
            message = f"{spec} (commit {commit[:12]}): its tree cannot be taken out: {error}"
            raise DiffError(message) from error
    try:
        return Side(spec, resources.kb_folder(tree), revision=commit)
    except resources.NotAKnowledgeBase as error:
        message = str(error).replace(str(tree), "its tree")
        raise DiffError(f"{spec} (commit {commit[:12]}): {message}") from error


# ---------------------------------------------------------------- knowledge-base changes


def _graph(kb: Path) -> Graph:
    graph = Graph()
    for path in sorted((kb / "ontology").glob("*.ttl")):
        graph.parse(path, format="turtle")
    return graph


def _closure(graph: Graph, subject: URIRef, predicate: URIRef | None = None) -> Graph:
    """The triples about `subject` (only `predicate`'s, when given) and, through blank nodes, about them."""
    out = Graph()
    todo: list[Any] = [subject]
    seen: set[Any] = set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        for p, o in graph.predicate_objects(node):
            if node == subject and predicate is not None and p != predicate:
                continue
            out.add((node, p, o))
            if isinstance(o, BNode):
                todo.append(o)
    return out


def _kind(graph: Graph, subject: URIRef) -> str:
    types = set(graph.objects(subject, RDF.type))
    for name, cls in KINDS:
        if any(t == cls or cls in graph.transitive_objects(t, RDFS.subClassOf) for t in types):
            return name
    return "other"


def _value(graph: Graph, node: Any) -> str:
    if isinstance(node, BNode):
        return "[...]"
    if isinstance(node, Literal):
        return node.n3(graph.namespace_manager)
    return graph.namespace_manager.normalizeUri(node)


def _predicates(old: Graph, new: Graph, subject: URIRef) -> list[dict[str, Any]]:
    """The predicates whose values about `subject` differ (blank-node closures compared as graphs)."""
    changed = []
    predicates = {p for g in (old, new) for p in g.predicates(subject) if isinstance(p, URIRef)}
    for p in sorted(predicates):
        before, after = _closure(old, subject, p), _closure(new, subject, p)
        if isomorphic(before, after):
            continue
        changed.append(
            {
                "predicate": new.namespace_manager.normalizeUri(p),
                "old": sorted(_value(old, o) for o in old.objects(subject, p)),
                "new": sorted(_value(new, o) for o in new.objects(subject, p)),
            }
        )
    return changed


def term_changes(old_kb: Path, new_kb: Path) -> list[dict[str, Any]]:
    """The terms of the knowledge bases added, removed or changed, by kind and IRI: the IRIs under the
    haip: namespace and every IRI a module defines (rdfs:isDefinedBy), whatever its namespace."""
    old, new = _graph(old_kb), _graph(new_kb)

    def terms(graph: Graph) -> set[URIRef]:
        defined = {s for s in graph.subjects(RDFS.isDefinedBy, None) if isinstance(s, URIRef)}
        return defined | {s for s in graph.subjects() if isinstance(s, URIRef) and s.startswith(str(HAIP))}

    before, after = terms(old), terms(new)
    out = []
    for subject in before | after:
        graph = new if subject in after else old
        entry: dict[str, Any] = {
            "kind": _kind(graph, subject),
            "term": graph.namespace_manager.normalizeUri(subject),
        }
        if subject not in before:
            entry["change"] = "added"
        elif subject not in after:
            entry["change"] = "removed"
        elif isomorphic(_closure(old, subject), _closure(new, subject)):
            continue
        else:
            entry["change"] = "changed"
            entry["predicates"] = _predicates(old, new, subject)
        out.append(entry)
    return sorted(out, key=lambda e: (e["kind"], e["term"]))


def file_changes(old_kb: Path, new_kb: Path, pattern: str) -> list[dict[str, Any]]:
    """The files matching `pattern` added, removed or changed; a changed file with the lines its unified
    diff adds and removes."""
    old = {p.relative_to(old_kb).as_posix(): p for p in old_kb.glob(pattern)}
    new = {p.relative_to(new_kb).as_posix(): p for p in new_kb.glob(pattern)}
    out: list[dict[str, Any]] = []
    for name in sorted(old.keys() | new.keys()):
        if name not in old:
            out.append({"file": name, "change": "added"})
        elif name not in new:
            out.append({"file": name, "change": "removed"})
        else:
            a = old[name].read_text(encoding="utf-8").splitlines()
            b = new[name].read_text(encoding="utf-8").splitlines()
            if a == b:
                continue
            lines = list(difflib.unified_diff(a, b, lineterm="", n=0))[2:]
            added = sum(1 for line in lines if line.startswith("+"))
            removed = sum(1 for line in lines if line.startswith("-"))
            out.append({"file": name, "change": "changed", "lines_added": added, "lines_removed": removed})
    return out


# ---------------------------------------------------------------- deciding


def decide(kb_side: Side, paths: Iterable[str]) -> list[Record]:
    """The records of the cases in `paths` decided under `kb_side`, with their facts, by `haip-kg
    evaluate` in a fresh process."""
    command = [sys.executable, "-m", "haip_kg", "evaluate", "--kb", str(kb_side.kb), *kb_side.options]
    command += ["--format", "jsonl", "--facts", "--quiet", "--", *paths]
    done = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", check=False)
    if done.returncode not in (0, 1):
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DiffError(f"deciding under {kb_side.spec} failed: {last}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _name(record: Record) -> str:
    return str(record["patient"]) if record.get("patient") is not None else f"({record.get('source')})"


def _statuses(record: Record) -> dict[str, str]:
    """Each statement's status, with whether it is met when the statement reports it."""
    out = {}
    for slug, entry in record["statements"].items():
        status = entry["status"]
        if "met" in entry:
            status += {True: " (met)", False: " (not met)", None: " (met unknown)"}[entry["met"]]
        out[slug] = status
    return out


def _facts_changed(old: Record, new: Record) -> dict[str, list[Any]]:
    a, b = old.get("facts", {}), new.get("facts", {})
    return {
        f: [a.get(f, ABSENT), b.get(f, ABSENT)]
        for f in sorted(a.keys() | b.keys())
        if a.get(f, ABSENT) != b.get(f, ABSENT)
    }


def _transitions(pairs: list[tuple[str, str, str, Record, Record]]) -> list[dict[str, Any]]:
    """(old, new, patient, records) of the patients that moved -> one entry per transition."""
    counts = Counter((old, new) for old, new, *_rest in pairs)
    out = []
    for (old, new), count in sorted(counts.items()):
        patient, a, b = min(
            ((p, a, b) for o, n, p, a, b in pairs if (o, n) == (old, new)), key=lambda found: found[0]
        )
        out.append(
            {"old": old, "new": new, "patients": count, "example": patient, "facts": _facts_changed(a, b)}
        )
    return out


def cohort_changes(old: list[Record], new: list[Record]) -> dict[str, Any]:
    """Status and verdict transitions per statement between two runs over the same cohort."""
    before: dict[str, Record] = {}
    after: dict[str, Record] = {}
    for records, by_name in ((old, before), (new, after)):
        for record in records:  # a later case with the same id is refused as a duplicate: keep the first
            by_name.setdefault(_name(record), record)
    refused = []
    decided = []
    for patient in sorted(before.keys() | after.keys()):
        a, b = before.get(patient), after.get(patient)
        bad = [(label, r) for label, r in (("old", a), ("new", b)) if r is None or "errors" in r]
        if len(bad) == 1:
            label, r = bad[0]
            message = r["errors"][0]["message"] if r is not None else "not in this run"
            refused.append({"patient": patient, "refused_by": label, "message": message})
        elif not bad and a is not None and b is not None:
            decided.append((patient, a, b))
    by_statement: dict[str, list[tuple[str, str, str, Record, Record]]] = defaultdict(list)
    verdicts = []
    changed = set()
    order: list[str] = []
    for patient, a, b in decided:
        sa, sb = _statuses(a), _statuses(b)
        order += [s for s in [*sb, *sa] if s not in order]
        for slug in [*sb, *(s for s in sa if s not in sb)]:
            pair = (sa.get(slug, ABSENT), sb.get(slug, ABSENT))
            if pair[0] != pair[1]:
                by_statement[slug].append((*pair, patient, a, b))
                changed.add(patient)
        if a["verdict"] != b["verdict"]:
            verdicts.append((a["verdict"], b["verdict"], patient, a, b))
            changed.add(patient)
    return {
        "patients": len(before.keys() | after.keys()),
        "patients_changed": len(changed),
        "statements": {s: _transitions(by_statement[s]) for s in order if s in by_statement},
        "verdict": _transitions(verdicts),
        "refused_on_one_side": refused,
    }


# ---------------------------------------------------------------- test cases


OPTIONAL_FIELDS = ("met", "missing", "conflicts", "interpretations", "exception", "overridden_by")
"""The parts of a statement's entry an expected file states (tests/test_cases.py compares the same)."""


def _statement_view(entry: Record) -> Record:
    view: Record = {"status": entry["status"]}
    for field in OPTIONAL_FIELDS:
        if field in entry and entry[field] != []:
            value = entry[field]
            view[field] = sorted(value) if isinstance(value, list) else value
        elif field in entry and field in ("missing", "conflicts"):
            view[field] = []
    return view


def _warnings(record: Record) -> list[str]:
    return sorted(r["conflict"] for r in record["validation"]["results"] if r["severity"] == "warning")


def _disagreements(record: Record, expected: Record) -> list[str]:
    """The parts of `expected` that `record` does not hold, compared as tests/test_cases.py does (every
    statement either names; the reasons' wording is not compared)."""
    if "errors" in record:
        return ["refused: " + "; ".join(e["message"] for e in record["errors"])]
    parts = [k for k in ("verdict", "conditions", "clinical_risk_score") if record[k] != expected.get(k)]
    if sorted(record["flags"]) != sorted(expected.get("flags", [])):
        parts.append("flags")
    statements, stated = record["statements"], expected.get("statements", {})
    for slug in [*statements, *(s for s in stated if s not in statements)]:
        if slug not in statements or slug not in stated:
            parts.append(f"statements.{slug}")
            continue
        got, want = _statement_view(statements[slug]), _statement_view(stated[slug])
        parts += [f"statements.{slug}.{f}" for f in ("status", *OPTIONAL_FIELDS) if got.get(f) != want.get(f)]
    validation = expected.get("validation", {})
    if record["validation"]["conforms"] != validation.get("conforms"):
        parts.append("validation.conforms")
    if _warnings(record) != sorted(validation.get("warnings", [])):
        parts.append("validation.warnings")
    return parts


def expected_of(record: Record, old: Record) -> Record:
    """The expected file that `record` holds, in the subset expected files state (the fields of `old`
    the comparison does not read are kept, in their place)."""
    statements = {}
    for slug, entry in record["statements"].items():
        statements[slug] = {"status": entry["status"]}
        statements[slug].update({f: entry[f] for f in OPTIONAL_FIELDS if f in entry})
    view = {
        "patient": record["patient"],
        "verdict": record["verdict"],
        "conditions": record["conditions"],
        "statements": statements,
        "flags": record["flags"],
        "clinical_risk_score": record["clinical_risk_score"],
        "validation": {"conforms": record["validation"]["conforms"], "warnings": _warnings(record)},
    }
    return {**old, **view}


def case_files(folder: Path) -> list[Path]:
    """The hand-written cases of a folder (tests/cases/<id>.json|.ttl with <id>.expected.json)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".json", ".ttl")
        and not p.name.endswith(".expected.json")
        and p.with_name(p.stem + ".expected.json").is_file()
    )


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def broken_cases(new_side: Side, folder: Path) -> list[dict[str, Any]]:
    """The cases of `folder` whose expected file the new side's decisions no longer hold, with the parts
    that differ and the expected file the new side would write (`rewrite`, None when it refuses it)."""
    files = case_files(folder)
    if not files:
        return []
    records = {r["patient"]: r for r in decide(new_side, [str(p) for p in files]) if r.get("patient")}
    out = []
    for path in files:
        expected_path = path.with_name(path.stem + ".expected.json")
        expected = _load(expected_path)
        record = records.get(expected.get("patient"))
        parts = ["no decision for this case"] if record is None else _disagreements(record, expected)
        if parts:
            rewrite = expected_of(record, expected) if record is not None and "errors" not in record else None
            out.append({"case": path.stem, "differs": parts, "expected": expected_path, "rewrite": rewrite})
    return out


def accept(broken: list[dict[str, Any]]) -> list[Path]:
    """Rewrite the expected file of each broken case with what the new side decides (as they are
    written: indent 1, UTF-8, a final newline); the ones written."""
    written = []
    for entry in broken:
        if entry["rewrite"] is None:
            continue
        path: Path = entry["expected"]
        path.write_text(json.dumps(entry["rewrite"], indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


# ---------------------------------------------------------------- the report


def _side_entry(s: Side) -> dict[str, Any]:
    entry: dict[str, Any] = {"spec": s.spec}
    if s.revision is not None:
        entry["commit"] = s.revision
    return entry


def report(
    old: Side, new: Side, cohort: list[str], cases: Path | None, cases_label: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The diff as a JSON-ready document (keys in a fixed order, lists sorted) and the broken cases."""
    document: dict[str, Any] = {
        "old": _side_entry(old),
        "new": _side_entry(new),
        "knowledge_base": {
            "terms": term_changes(old.kb, new.kb),
            "rules": file_changes(old.kb, new.kb, "queries/**/*.rq"),
            "shapes": file_changes(old.kb, new.kb, "shapes/*.ttl"),
        },
        "cohort": None,
        "test_cases": None,
    }
    if cohort:
        document["cohort"] = {
            "paths": list(cohort),
            **cohort_changes(decide(old, cohort), decide(new, cohort)),
        }
    broken: list[dict[str, Any]] = []
    if cases is not None:
        broken = broken_cases(new, cases)
        document["test_cases"] = {
            "folder": cases_label,
            "cases": len(case_files(cases)),
            "disagree": [{"case": b["case"], "differs": b["differs"]} for b in broken],
        }
    return document, broken


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    yield "| " + " | ".join(header) + " |"
    yield "|" + "---|" * len(header)
    for row in rows:
        yield "| " + " | ".join(_cell(v) for v in row) + " |"


def _facts_text(facts: dict[str, list[Any]]) -> str:
    return ", ".join(f"{f}: {_cell(a)} -> {_cell(b)}" for f, (a, b) in facts.items()) or "(none)"


def _transition_rows(transitions: list[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for t in transitions:
        yield (t["old"], t["new"], t["patients"], t["example"], _facts_text(t["facts"]))


def as_markdown(document: dict[str, Any]) -> str:
    """The diff for a panel meeting: headings, tables."""
    old, new = document["old"], document["new"]
    lines = [f"# Knowledge-base diff: `{old['spec']}` -> `{new['spec']}`"]
    commits = [(label, e) for label, e in (("Old", old), ("New", new)) if "commit" in e]
    if commits:
        lines += ["", *(f"- {label}: `{e['spec']}` is commit `{e['commit']}`" for label, e in commits)]
    kb = document["knowledge_base"]
    lines += ["", "## Knowledge base", "", "### Terms", ""]
    if kb["terms"]:
        rows = []
        for t in kb["terms"]:
            details = "; ".join(
                f"{p['predicate']}: {', '.join(p['old']) or '(none)'} -> {', '.join(p['new']) or '(none)'}"
                for p in t.get("predicates", [])
            )
            rows.append((t["kind"], t["term"], t["change"], details))
        lines += _table(("kind", "term", "change", "what changed"), rows)
    else:
        lines.append("No term added, removed or changed.")
    for title, key in (("Rules", "rules"), ("Shapes", "shapes")):
        lines += ["", f"### {title}", ""]
        if kb[key]:
            lines += _table(
                ("file", "change", "lines added", "lines removed"),
                (
                    (f["file"], f["change"], f.get("lines_added", ""), f.get("lines_removed", ""))
                    for f in kb[key]
                ),
            )
        else:
            lines.append(f"No {key} file added, removed or changed.")
    cohort = document["cohort"]
    if cohort is not None:
        lines += ["", f"## Cohort ({cohort['patients']} patients: {', '.join(cohort['paths'])})", ""]
        if cohort["patients_changed"]:
            lines.append(f"{cohort['patients_changed']} of {cohort['patients']} patients changed.")
        else:
            lines.append("No decision changes.")
        header = ("old", "new", "patients", "example", "facts changed for the example")
        for slug, transitions in cohort["statements"].items():
            lines += ["", f"### {slug}", "", *_table(header, _transition_rows(transitions))]
        if cohort["verdict"]:
            lines += ["", "### Verdict", "", *_table(header, _transition_rows(cohort["verdict"]))]
        if cohort["refused_on_one_side"]:
            lines += ["", "### Refused on one side only", ""]
            lines += _table(
                ("patient", "refused by", "message"),
                ((r["patient"], r["refused_by"], r["message"]) for r in cohort["refused_on_one_side"]),
            )
    cases = document["test_cases"]
    if cases is not None:
        lines += ["", f"## Test cases ({cases['cases']} in {cases['folder']})", ""]
        if cases["disagree"]:
            lines += _table(
                ("case", "differs in"), ((c["case"], ", ".join(c["differs"])) for c in cases["disagree"])
            )
        else:
            lines.append("Every expected file still holds.")
    return "\n".join(lines) + "\n"


@contextmanager
def workspace() -> Iterator[Path]:
    """A temporary folder for the trees of git revisions, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="haip-kg-diff-") as folder:
        yield Path(folder)


def default_cases(new: Side) -> tuple[Path | None, str]:
    """The hand-written cases the new side is checked against: its own tests/cases when it has them,
    else the installed knowledge base's (a source checkout's); with a label free of temporary paths."""
    own = new.kb / "tests" / "cases"
    if own.is_dir():
        return own, f"tests/cases of {new.spec}"
    installed = resources.installed_root() / "tests" / "cases"
    if installed.is_dir():
        return installed, "tests/cases"
    return None, ""
