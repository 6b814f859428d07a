"""The benchmark: end-to-end cases/second and peak memory for haip-kg next to the naive baseline.

For each size it generates a synthetic cohort (benchmarks/make_cohort.py), runs
`haip-kg evaluate COHORT.json --format jsonl --quiet` (all cores) and, for the baseline sizes, the naive
stack (benchmarks/naive_baseline.py: rdflib parse, pySHACL, owlrl OWL-RL closure, rdflib SPARQL over the
same rules) on the same cohort as Turtle. Peak memory is the largest total RSS of the process and its
children, sampled every 0.1 s. The baseline gets a time limit; if it does not finish, the ratio printed
is a lower bound.

Usage: python benchmarks/run.py [--sizes 1000 10000 100000] [--baseline-sizes 100 10000]
                                [--baseline-timeout 1200] [--workdir DIR]
(about 30 minutes here, most of it the baseline's 1,200 s at 10,000 patients)
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
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[100, 10000])
    parser.add_argument("--baseline-timeout", type=float, default=1200)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="haip-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};",
        f"workdir {workdir}",
    )
    print(f"{'patients':>9} | {'haip-kg cases/s':>15} {'peak MiB':>9} |  (wall time)")
    sizes = sorted(set(args.sizes) | set(args.baseline_sizes))
    for size in sizes:
        cohort = workdir / f"cohort-{size}.json"
        if not cohort.exists():
            subprocess.run([python, str(HERE / "make_cohort.py"), str(size), str(cohort)], check=True)
    # haip-kg first (all sizes), then the slow baseline, so the two never share the machine
    ours: dict[int, dict[str, float | bool | str]] = {}
    for size in args.sizes:
        ours[size] = measure(
            [
                python,
                "-m",
                "haip_kg",
                "evaluate",
                str(workdir / f"cohort-{size}.json"),
                "--format",
                "jsonl",
                "--quiet",
                "-o",
                str(workdir / f"decisions-{size}.jsonl"),
            ]
        )
        print(
            f"{size:>9} | {size / float(ours[size]['seconds']):15.1f} {float(ours[size]['peak_mib']):9.0f} |"
            f"  ({float(ours[size]['seconds']):.1f} s)",
            flush=True,
        )
    for size in args.baseline_sizes:
        nt = workdir / f"cohort-{size}.nt"
        if not nt.exists():
            subprocess.run(
                [python, str(HERE / "to_turtle.py"), str(workdir / f"cohort-{size}.json"), str(nt)],
                check=True,
            )
        base = measure([python, str(HERE / "naive_baseline.py"), str(nt)], timeout=args.baseline_timeout)
        base_rate = size / float(base["seconds"])
        bound = "<" if not base["finished"] else ""
        line = f"{size:>9} | baseline {bound}{base_rate:.2f} cases/s, peak {float(base['peak_mib']):.0f} MiB"
        if size in ours:
            ours_rate = size / float(ours[size]["seconds"])
            line += f" | haip-kg/baseline {'>' if not base['finished'] else ''}{ours_rate / base_rate:.0f}x"
        if base["finished"]:
            line += f"\n{'':>9}   baseline steps (s): {json.loads(str(base['stdout']))['steps']}"
        else:
            limit = args.baseline_timeout
            line += f"\n{'':>9}   baseline did not finish in {limit:.0f} s (killed): ratio is a lower bound"
        print(line, flush=True)


if __name__ == "__main__":
    main()
