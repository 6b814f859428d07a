"""The benchmark: end-to-end cases/second and peak memory for haip-kg next to the naive baseline.

For each size it generates a synthetic cohort (benchmarks/make_cohort.py), runs
`haip-kg evaluate COHORT.json --format jsonl --quiet` (all cores) and, for the baseline sizes, the naive
stack (benchmarks/naive_baseline.py: rdflib parse, pySHACL, owlrl OWL-RL closure, rdflib SPARQL over the
same rules) on the same cohort as Turtle. Peak memory is the largest total RSS of the process and its
children, sampled every 0.1 s. The baseline gets a time limit; if it does not finish, the ratio printed
is a lower bound.

Usage: python benchmarks/run.py [--sizes 1000 10000 100000] [--baseline-sizes 100 1000 10000]
                                [--baseline-timeout 1800] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and all its descendants, from /proc."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += (
                next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) * 1024
            )
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(child) for child in children]
        except (OSError, StopIteration, ValueError):
            continue
    return total


def measure(command: list[str], timeout: float | None = None) -> dict[str, float | bool | str]:
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    finished = True
    while process.poll() is None:
        peak = max(peak, _tree_rss(process.pid))
        if timeout is not None and time.perf_counter() - start > timeout:
            process.kill()
            finished = False
            break
        time.sleep(0.1)
    out, err = process.communicate()
    seconds = time.perf_counter() - start
    if finished and process.returncode not in (0, 1):
        raise RuntimeError(f"{command} failed: {err[-2000:]}")
    return {"seconds": seconds, "peak_mib": peak / 2**20, "finished": finished, "stdout": out}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[100, 1000, 10000])
    parser.add_argument("--baseline-timeout", type=float, default=1800)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="haip-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};",
        f"workdir {workdir}",
    )
    print(
        f"{'patients':>9} | {'haip-kg cases/s':>15} {'peak MiB':>9} |",
        f"{'baseline cases/s':>16} {'peak MiB':>9} | ratio",
    )
    for size in sorted(set(args.sizes) | set(args.baseline_sizes)):
        cohort = workdir / f"cohort-{size}.json"
        if not cohort.exists():
            subprocess.run([python, str(HERE / "make_cohort.py"), str(size), str(cohort)], check=True)
        ours = None
        if size in args.sizes:
            ours = measure(
                [
                    python,
                    "-m",
                    "haip_kg",
                    "evaluate",
                    str(cohort),
                    "--format",
                    "jsonl",
                    "--quiet",
                    "-o",
                    str(workdir / f"decisions-{size}.jsonl"),
                ]
            )
        base = None
        if size in args.baseline_sizes:
            turtle = workdir / f"cohort-{size}.ttl"
            if not turtle.exists():
                subprocess.run([python, str(HERE / "to_turtle.py"), str(cohort), str(turtle)], check=True)
            base = measure(
                [python, str(HERE / "naive_baseline.py"), str(turtle)], timeout=args.baseline_timeout
            )
        ours_rate = size / float(ours["seconds"]) if ours else None
        base_rate = size / float(base["seconds"]) if base else None
        base_text = "-"
        if base:
            base_text = f"{base_rate:16.1f}" if base["finished"] else f"<{base_rate:15.2f}"
            base_text += f" {float(base['peak_mib']):9.0f}"
        ratio = ""
        if ours_rate and base_rate:
            ratio = f"{'>' if not base['finished'] else ''}{ours_rate / base_rate:.0f}x"  # type: ignore[index]
        ours_text = f"{ours_rate:15.1f} {float(ours['peak_mib']):9.0f}" if ours else f"{'-':>15} {'':>9}"
        print(f"{size:>9} | {ours_text} | {base_text:>26} | {ratio}", flush=True)
        if base and base["finished"]:
            print(f"{'':>9}   baseline steps: {json.loads(str(base['stdout']))['steps']}", flush=True)
        if base and not base["finished"]:
            print(f"{'':>9}   baseline did not finish in {args.baseline_timeout:.0f} s (killed)", flush=True)


if __name__ == "__main__":
    main()
