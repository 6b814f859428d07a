"""The physical floor of a `haip-kg evaluate` run: read the same JSON cohort and load the same triples
into Oxigraph, with the same parallelism, and nothing else (no validation, no rules, no output).

    python benchmarks/floor.py prepare COHORT.json DIR   # untimed: DIR/batch-NNNNN.nt, one per batch
    python benchmarks/floor.py load COHORT.json DIR [--workers N]   # the part to time

`prepare` converts the cohort with the current checkout's converter (haip_kg.inputs, as `evaluate`
reads case sheets), batch by batch as `evaluate` cuts them (250 cases a batch by default); a refused
case contributes the triples it converted to, if any. `load` parses the JSON file (orjson), then
`--workers` processes (default: all cores, as `evaluate`) each take an equal share of the batches and
load each batch into a fresh `pyoxigraph.Store()` (one lenient N-Triples load: the fastest load
Oxigraph offers). It prints {"cases": ..., "triples": ...} on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from pathlib import Path

import orjson
import pyoxigraph as ox

BATCH_SIZE = 250


def prepare(cohort: str, folder: Path, batch_size: int = BATCH_SIZE) -> int:
    """Write one N-Triples file per batch of the cohort; returns the number of batches."""
    from haip_kg import engine, inputs

    folder.mkdir(parents=True, exist_ok=True)
    cases = inputs.read(cohort)
    count = 0
    for count, batch in enumerate(iter(lambda: list(islice(cases, batch_size)), []), start=1):
        data = engine.ntriples_of(triple for case in batch for triple in case.triples)
        (folder / f"batch-{count - 1:05d}.nt").write_bytes(data)
    return count


def _load(files: list[str]) -> int:
    triples = 0
    for name in files:
        store = ox.Store()
        store.load(Path(name).read_bytes(), format=ox.RdfFormat.N_TRIPLES, lenient=True)
        triples += len(store)
    return triples


def load(cohort: str, folder: Path, workers: int) -> dict[str, int]:
    cases = len(orjson.loads(Path(cohort).read_bytes()))
    files = sorted(str(path) for path in folder.glob("batch-*.nt"))
    share = -(-len(files) // workers)
    parts = [files[i : i + share] for i in range(0, len(files), share)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        triples = sum(pool.map(_load, parts))
    return {"cases": cases, "triples": triples}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=["prepare", "load"])
    parser.add_argument("cohort")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    args = parser.parse_args()
    if args.step == "prepare":
        print(json.dumps({"batches": prepare(args.cohort, args.folder, args.batch_size)}))
    else:
        print(json.dumps(load(args.cohort, args.folder, args.workers)))


if __name__ == "__main__":
    main()
