"""Prove that the decisions are identical across modes on the same cohort: embedded (one process),
embedded with worker processes, Dask distributed (a local multi-process cluster) and in place on two
SPARQL servers started on loopback: the Oxigraph server and Virtuoso.

Usage: python benchmarks/compare_modes.py [N=10000] [--skip-endpoint] [--skip-dask]
Exit code 0 when every mode gives the same record for every patient (the `source` field aside).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import servers
from rdflib import Graph

from haip_kg import evaluate, inputs
from haip_kg.endpoint import evaluate_in_place

HERE = Path(__file__).resolve().parent


def _records(batches: Any) -> dict[str, dict[str, Any]]:
    return {
        o.record["patient"]: {k: v for k, v in o.record.items() if k != "source"}
        for b in batches
        for o in b.outcomes
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("n", type=int, nargs="?", default=10000)
    parser.add_argument("--skip-endpoint", action="store_true")
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="haip-modes-"))
    cohort = work / "cohort.json"
    subprocess.run([sys.executable, str(HERE / "make_cohort.py"), str(args.n), str(cohort)], check=True)
    items = list(inputs.read_items(str(cohort)))
    results: dict[str, dict[str, dict[str, Any]]] = {}

    def timed(name: str, run: Any) -> None:
        start = time.perf_counter()
        results[name] = run()
        print(
            f"{name:28s} {len(results[name]):>7} patients in {time.perf_counter() - start:7.1f} s", flush=True
        )

    timed("embedded, 1 process", lambda: _records(evaluate.evaluate(items)))
    timed("embedded, 2 worker processes", lambda: _records(evaluate.evaluate(items, workers=2)))
    if not args.skip_dask:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            timed(
                "dask, local 2-process cluster",
                lambda: _records(evaluate.evaluate(items, scheduler=cluster.scheduler_address)),
            )
    if not args.skip_endpoint:
        data = Graph()
        for case in inputs.read(str(cohort)):
            for triple in case.triples:
                data.add(triple)
        ntriples = data.serialize(format="nt", encoding="utf-8")
        for name, server in (
            ("in place, Oxigraph server", servers.oxigraph),  # two partitions at a time
            ("in place, Virtuoso", servers.virtuoso),
        ):
            with server() as remote:
                # checked: Virtuoso once kept only part of a large PUT that it answered with success
                holds = len({line for line in ntriples.splitlines() if line.strip()})
                remote.write_checked("urn:haip:cohort", ntriples, holds, replace=True)
                timed(
                    name,
                    lambda remote=remote: {
                        o.record["patient"]: {k: v for k, v in o.record.items() if k != "source"}
                        for b in evaluate_in_place(remote, "urn:haip:cohort", workers=2)
                        for o in b.outcomes
                    },
                )
    reference = results["embedded, 1 process"]
    failed = False
    for name, records in results.items():
        differing = [p for p in reference if records.get(p) != reference[p]]
        print(
            f"{name:28s} {'identical' if not differing else f'{len(differing)} differ, e.g. {differing[:3]}'}"
        )
        failed = failed or bool(differing) or len(records) != len(reference)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
