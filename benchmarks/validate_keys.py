"""Time case-sheet validation both ways on one cohort, in one process: by node description over the
converted batch (validate.batch_findings) and by (key, value) over the case sheets
(keyvalidation.sheet_findings), batch by batch, and check that both find the same. The first pass over
the cohort starts with empty caches (cold); a second pass over the same cases shows the caches full
(warm). Conversion and the batch's store are not timed: deciding needs them either way.

Usage: python benchmarks/validate_keys.py COHORT.json [--batch 250] [--passes 2]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

from haip_kg import engine, inputs, keyvalidation, validate


def _by_description(sheets: list[Any]) -> tuple[float, dict[int, list[validate.Finding]]]:
    cases = [inputs.to_case(inputs.Sheet("cohort", i, sheet)) for i, sheet in enumerate(sheets)]
    readable = [(i, case) for i, case in enumerate(cases) if not case.errors]
    data = {i: engine.ntriples_of(case.triples) for i, case in readable}
    node_keys: dict[Any, str] = {}
    for _i, case in readable:
        node_keys.update(case.node_keys)
    store = validate.data_store(data.values())
    start = time.process_time()
    found = validate.batch_findings([(i, case.triples, data[i]) for i, case in readable], node_keys, store)
    return time.process_time() - start, found


def _by_key(sheets: list[Any]) -> tuple[float, dict[int, list[validate.Finding]] | None]:
    start = time.process_time()
    found = keyvalidation.sheet_findings(list(enumerate(sheets)))
    return time.process_time() - start, found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("cohort")
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    sheets = [item.data for item in inputs.read_items(args.cohort) if isinstance(item, inputs.Sheet)]
    keyvalidation.prepare()
    gc.collect()
    gc.freeze()
    for run in range(args.passes):
        spent = {"by node description": 0.0, "by (key, value)": 0.0}
        differ = found = 0
        for start in range(0, len(sheets), args.batch):
            batch = sheets[start : start + args.batch]
            described, whole = _by_description(batch)
            keyed, by_key = _by_key(batch)
            spent["by node description"] += described
            spent["by (key, value)"] += keyed
            differ += by_key != whole
            found += sum(len(f) for f in whole.values())
        label = "cold" if run == 0 else "warm"
        for name, seconds in spent.items():
            print(f"pass {run + 1} ({label}) {name}: {1000 * seconds / len(sheets):.3f} ms a case")
        print(f"  {found} findings, {differ} batches differ; cache {keyvalidation.cache_info()}")


if __name__ == "__main__":
    main()
