"""Mutation testing: does the test suite catch realistic faults in the rules, the ontology, the shapes and
the Python?

Each mutant in the catalogue (tools/mutants.toml) replaces one short, stable piece of text (its anchor) in
one file. One at a time, in a throwaway copy of the tree (the working tree is never touched), the mutant
is applied and a chosen subset of the test suite runs against the copy (pytest -x, stopping at the first
failure). A table gives each mutant's result:

  killed      a test failed: the suite catches this fault
  survived    every test passed: a fault the suite does not see
  equivalent  marked so in the catalogue, with the reason it cannot change any output (not run)
  stale       its anchor is no longer in the file (the file was rewritten): update the catalogue

Exit status 0 when every mutant that is not equivalent was killed; 1 when one survived or is stale (or
the run failed); 2 for a usage error.

    python tools/mutate.py                     # the whole catalogue
    python tools/mutate.py -k score -k flag    # the mutants whose id contains "score" or "flag"
    python tools/mutate.py --jobs 2            # two mutants at a time
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = Path(__file__).resolve().parent / "mutants.toml"
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis", "*.pyc"
)


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    description: str
    equivalent: str | None  # the reason it cannot change any output, or None
    tests: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    outcome: str  # killed, survived, equivalent, stale, error
    detail: str
    seconds: float


def load(path: Path) -> tuple[list[Mutant], tuple[str, ...], int]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    run = data["run"]
    default_tests = tuple(run["tests"])
    mutants = [
        Mutant(
            id=m["id"],
            file=m["file"],
            find=m["find"],
            replace=m["replace"],
            description=m["description"],
            equivalent=m.get("equivalent"),
            tests=tuple(m.get("tests", default_tests)),
        )
        for m in data["mutant"]
    ]
    ids = [m.id for m in mutants]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"duplicate mutant ids in {path}: {', '.join(duplicates)}")
    return mutants, default_tests, int(run.get("timeout", 900))


def anchored(mutant: Mutant, root: Path) -> str | None:
    """The mutated text of the mutant's file, or None when its anchor is not there exactly once."""
    path = root / mutant.file
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    if text.count(mutant.find) != 1:
        return None
    return text.replace(mutant.find, mutant.replace)


def _first_failure(output: str) -> str:
    for pattern in (r"^FAILED (\S+)", r"^ERROR (\S+)", r"^(E\s+.+)$"):
        found = re.search(pattern, output, re.MULTILINE)
        if found:
            return found.group(1)[:100]
    return output.strip().splitlines()[-1][:100] if output.strip() else ""


def run(mutant: Mutant, root: Path, timeout: int) -> Result:
    start = time.monotonic()
    mutated = anchored(mutant, root)
    if mutated is None:
        return Result(mutant, "stale", f"anchor not found once in {mutant.file}", 0.0)
    if mutant.equivalent:
        return Result(mutant, "equivalent", mutant.equivalent, 0.0)
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as folder:
        copy = Path(folder) / "tree"
        shutil.copytree(root, copy, ignore=IGNORED)
        (copy / mutant.file).write_text(mutated, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutant.tests]
        try:
            done = subprocess.run(
                command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return Result(mutant, "killed", f"timed out after {timeout} s", time.monotonic() - start)
    seconds = time.monotonic() - start
    output = done.stdout + done.stderr
    if done.returncode == 0:
        return Result(mutant, "survived", "every test passed", seconds)
    if done.returncode in (1, 2):  # tests failed, or collection failed on the mutated code
        return Result(mutant, "killed", _first_failure(output), seconds)
    return Result(mutant, "error", f"pytest exit {done.returncode}: {_first_failure(output)}", seconds)


def table(results: list[Result]) -> Iterator[str]:
    width = max(len(r.mutant.id) for r in results)
    file_width = max(len(r.mutant.file) for r in results)
    yield f"{'mutant':<{width}}  {'file':<{file_width}}  {'result':<10}  {'s':>5}  detail"
    for r in results:
        yield (
            f"{r.mutant.id:<{width}}  {r.mutant.file:<{file_width}}  {r.outcome:<10}  "
            f"{r.seconds:5.0f}  {r.detail}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to copy and mutate")
    parser.add_argument(
        "-k", dest="only", action="append", default=[], help="only mutant ids containing this"
    )
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at a time (default 1)")
    parser.add_argument("--list", action="store_true", help="list the catalogue and check its anchors only")
    parser.add_argument(
        "--tests", nargs="+", help="run these tests for every mutant instead of the catalogue's subset"
    )
    args = parser.parse_args(argv)
    mutants, _tests, timeout = load(args.catalogue)
    if args.tests:
        mutants = [replace(m, tests=tuple(args.tests)) for m in mutants]
    if args.only:
        mutants = [m for m in mutants if any(part in m.id for part in args.only)]
    if not mutants:
        parser.error("no mutant selected")
    root = args.root.resolve()
    if args.list:
        for m in mutants:
            state = "stale" if anchored(m, root) is None else "equivalent" if m.equivalent else "ok"
            print(f"{m.id:<40} {m.file:<45} {state:<10} {m.description}")
        return 0
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = []
        for result in pool.map(lambda m: run(m, root, timeout), mutants):
            print(f"{result.outcome:<10} {result.mutant.id}", file=sys.stderr, flush=True)
            results.append(result)
    for line in table(results):
        print(line)
    counted = [r for r in results if r.outcome in ("killed", "survived")]
    killed = sum(r.outcome == "killed" for r in counted)
    counts = {
        o: sum(r.outcome == o for r in results)
        for o in ("killed", "survived", "equivalent", "stale", "error")
    }
    rate = f"{100 * killed / len(counted):.1f}%" if counted else "n/a"
    print(
        f"\n{len(results)} mutants: "
        + ", ".join(f"{n} {o}" for o, n in counts.items())
        + f"; kill rate {killed}/{len(counted)} = {rate} (equivalent and stale not counted);"
        + f" {time.monotonic() - started:.0f} s"
    )
    return 0 if counts["survived"] == counts["stale"] == counts["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
