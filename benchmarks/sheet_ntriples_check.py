"""Check and time sheet_ntriples against the rdflib path on a cohort of case sheets, in one process.

For every case sheet of the file (read as `haip-kg evaluate` reads it): the rdflib path
(`casesheet.convert`, then `engine.ntriples_of`) and `sheet_ntriples` must give the same bytes, and
sheet_ntriples None exactly where the rdflib path reports errors. Then each path is timed over all the
sheets, a few rounds each (the first round fills rdflib's and the converter's caches).

Usage: python benchmarks/make_cohort.py 10000 /tmp/cohort.json --seed 7
       python benchmarks/sheet_ntriples_check.py /tmp/cohort.json [--rounds 3]
Exit code 1 when a sheet differs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from haip_kg import casesheet, engine, inputs
from haip_kg.sheet_ntriples import sheet_ntriples


def rdflib_path(sheet: Any) -> bytes | None:
    conversion = casesheet.convert(sheet)
    return None if conversion.errors else engine.ntriples_of(conversion.triples)


def per_case_ms(convert: Callable[[Any], bytes | None], sheets: list[Any]) -> float:
    start = time.perf_counter()
    for sheet in sheets:
        convert(sheet)
    return (time.perf_counter() - start) * 1000 / len(sheets)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("cohort")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sheets = [item.data for item in inputs.read_items(args.cohort) if isinstance(item, inputs.Sheet)]
    casesheet.mapping()
    sheet_ntriples({"id": "warm-up"})  # the writers are made once per process, before any timing
    timings = {"rdflib path": [], "sheet_ntriples": []}
    for _round in range(args.rounds):
        timings["rdflib path"].append(per_case_ms(rdflib_path, sheets))
        timings["sheet_ntriples"].append(per_case_ms(sheet_ntriples, sheets))
    different = [i for i, sheet in enumerate(sheets) if rdflib_path(sheet) != sheet_ntriples(sheet)]
    clean = sum(1 for sheet in sheets if sheet_ntriples(sheet) is not None)
    print(f"{len(sheets)} case sheets, {clean} clean, {len(different)} different", file=sys.stderr)
    for i in different[:5]:
        print(f"  differs: sheet {i} ({sheets[i].get('id')!r})", file=sys.stderr)
    for name, rounds in timings.items():
        figures = ", ".join(f"{ms:.4f}" for ms in rounds)
        print(f"{name}: {figures} ms a case (rounds 1..{len(rounds)})", file=sys.stderr)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
