"""The benchmark: end-to-end seconds, cases/second and peak memory of `haip-kg evaluate` for several
haip-kg versions side by side, on two cohorts, next to the physical floor (and, if asked, the naive
baseline).

For each cohort (synthetic: benchmarks/make_cohort.py, values from small sets; realistic: the same with
`--realistic`, one-decimal measurements, free-text regimens, partly filled sheets, 3% invalid) and each
size, it runs `haip-kg evaluate COHORT.json --format jsonl --quiet -o OUT` (all cores) for the current
checkout (the `haip-kg` of this interpreter's environment, with `--stats` when it has that option) and
for every `--version NAME=PATH/TO/haip-kg`, and the floor (benchmarks/floor.py: read the same JSON, load
the same triples into Oxigraph, one fresh store per batch of 250, all cores; its N-Triples are prepared
untimed, with the current checkout's converter).
Peak memory is the largest total RSS of the process and its children, sampled every 0.1 s; CPU
seconds (user + system of the whole process tree) are less disturbed than wall seconds by other load.
It prints Markdown tables on stdout: the runs (with the ratio end-to-end / floor), the current
checkout's cache hit rates (from its `cache-stats: {JSON}` line on stderr) when it reports them, and with
`--check-identical NAME` whether the current checkout's JSON Lines equal NAME's byte for byte (and, if
not, whether they hold the same records as JSON: the first differing line of each).
`--json OUT` writes every figure. Outputs stay in the workdir (`decisions-COHORT-SIZE-NAME.jsonl`).

The naive stack (benchmarks/naive_baseline.py: rdflib parse, pySHACL, owlrl OWL-RL closure, rdflib
SPARQL over the same rules) runs on the synthetic cohort as Turtle for `--baseline-sizes`, with a time
limit; if it does not finish, the ratio printed is a lower bound.

`--repeat R` runs R rounds in which the commands take turns, and reports each one's fastest run: on a
shared machine, use 2 or 3. The naive baseline (now opt-in: it alone takes about 20 minutes) runs once.

Usage: python benchmarks/run.py [--sizes 1000 10000] [--cohorts synthetic realistic]
           [--version 0.6.0=/work/v060/.venv/bin/haip-kg ...] [--check-identical 0.6.0] [--repeat 1]
           [--json OUT.json] [--baseline-sizes 100 10000] [--baseline-timeout 1200] [--workdir DIR]
Run time on this 2-core machine, with 0.6.0 and 0.7.0 beside the current checkout (each about 3 ms of
CPU a case on the synthetic cohort, 3.7 on the realistic one): the defaults take about 3 minutes a round
on a quiet machine (5 when others share it), nearly all of it the 6 runs at 10,000; 100,000 adds about
20 minutes a round. The baseline adds up to --baseline-timeout per size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children and of their waited-for descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(command: list[str], timeout: float | None = None) -> dict[str, Any]:
    """Wall seconds, CPU seconds and peak memory (MiB) of a command and its process tree; its output."""
    cpu = _children_cpu()
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
    return {
        "seconds": seconds,
        "cpu_seconds": _children_cpu() - cpu,
        "peak_mib": peak / 2**20,
        "finished": finished,
        "stdout": out,
        "stderr": err,
    }


COHORTS = ("synthetic", "realistic")
STATS_PREFIX = "cache-stats: "


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), ""
    )
    return {
        "cores": os.cpu_count(),
        "cpu": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cohort_file(workdir: Path, cohort: str, size: int) -> Path:
    """The cohort's JSON file, generated once per workdir (seed 2014)."""
    path = workdir / (f"cohort-{size}.json" if cohort == "synthetic" else f"cohort-{cohort}-{size}.json")
    if not path.exists():
        flags = ["--realistic"] if cohort == "realistic" else []
        subprocess.run(
            [sys.executable, str(HERE / "make_cohort.py"), str(size), str(path), *flags], check=True
        )
    return path


def current_command() -> list[str]:
    """The `haip-kg` of this interpreter's environment (`python -m haip_kg` would import a `haip_kg`
    folder in the working directory instead)."""
    script = Path(sys.executable).parent / "haip-kg"
    return [str(script)] if script.exists() else [sys.executable, "-P", "-m", "haip_kg"]


def has_stats(command: list[str]) -> bool:
    """Whether this haip-kg's `evaluate` accepts --stats (older versions refuse unknown options)."""
    shown = subprocess.run([*command, "evaluate", "--help"], capture_output=True, text=True)
    return "--stats" in shown.stdout


def cache_stats(stderr: str) -> dict[str, dict[str, int]] | None:
    """The `cache-stats: {JSON}` line that `evaluate --stats` prints last on stderr, if any."""
    lines = [line for line in stderr.splitlines() if line.startswith(STATS_PREFIX)]
    return json.loads(lines[-1][len(STATS_PREFIX) :]) if lines else None


def refused(decisions: Path) -> int:
    with decisions.open("rb") as lines:
        return sum(b'"errors"' in line and "errors" in json.loads(line) for line in lines)


def first_difference(left: Path, right: Path, parse: bool = False) -> int | None:
    """None when the two JSON Lines files are equal, else the first line number (1-based) that differs:
    byte for byte, or with `parse` as JSON values (the same records written with other spacing)."""
    with left.open("rb") as a, right.open("rb") as b:
        number = 0
        while True:
            number += 1
            line_a, line_b = a.readline(), b.readline()
            same = line_a == line_b or (
                parse and bool(line_a and line_b) and json.loads(line_a) == json.loads(line_b)
            )
            if not same:
                return number
            if not line_a:
                return None


def best_of(commands: dict[str, list[str]], repeat: int) -> dict[str, dict[str, Any]]:
    """For each named command, the fastest of `repeat` runs (its peak memory and output with it). The
    commands take turns, round after round, so that a burst of load elsewhere hits all of them alike."""
    timed: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            timed[name].append(measure(command))
    return {
        name: {
            **min(runs, key=lambda run: float(run["seconds"])),
            "all_seconds": [r["seconds"] for r in runs],
        }
        for name, runs in timed.items()
    }


def floor_command(workdir: Path, cohort: str, size: int, source: Path) -> list[str]:
    """The timed part of the floor, its N-Triples prepared (untimed) now."""
    folder = workdir / f"floor-{cohort}-{size}"
    if not folder.exists():
        subprocess.run(
            [sys.executable, str(HERE / "floor.py"), "prepare", str(source), str(folder)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return [sys.executable, str(HERE / "floor.py"), "load", str(source), str(folder)]


def evaluate_runs(
    args: argparse.Namespace, workdir: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every (cohort, size, version) run and its floor, printed on stderr as they finish."""
    current = current_command()
    versions = [("current", current), *((name, [path]) for name, path in args.version)]
    stats = ["--stats"] if has_stats(current) else []
    runs: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    for cohort in args.cohorts:
        for size in args.sizes:
            source = cohort_file(workdir, cohort, size)
            outputs = {name: workdir / f"decisions-{cohort}-{size}-{name}.jsonl" for name, _ in versions}
            commands = {"floor": floor_command(workdir, cohort, size, source)}
            for name, command in versions:
                options = ["--format", "jsonl", "--quiet", "-o", str(outputs[name])]
                commands[name] = [
                    *command,
                    "evaluate",
                    str(source),
                    *options,
                    *(stats if name == "current" else []),
                ]
            timed = best_of(commands, args.repeat)
            floor = {**timed["floor"], **json.loads(timed["floor"]["stdout"])}
            floors.append(
                {
                    "cohort": cohort,
                    "size": size,
                    "seconds": floor["seconds"],
                    "all_seconds": floor["all_seconds"],
                    "cpu_seconds": floor["cpu_seconds"],
                    "peak_mib": floor["peak_mib"],
                    "triples": floor["triples"],
                }
            )
            for name, _ in versions:
                run = timed[name]
                runs.append(
                    {
                        "cohort": cohort,
                        "size": size,
                        "version": name,
                        "seconds": run["seconds"],
                        "all_seconds": run["all_seconds"],
                        "cpu_seconds": run["cpu_seconds"],
                        "cases_per_s": size / run["seconds"],
                        "peak_mib": run["peak_mib"],
                        "vs_floor": run["seconds"] / floor["seconds"],
                        "refused": refused(outputs[name]),
                        "caches": cache_stats(run["stderr"]),
                        "output": str(outputs[name]),
                    }
                )
            spent = ", ".join(f"{name} {run['seconds']:.1f} s" for name, run in timed.items())
            print(f"  {cohort} {size:,}: {spent}", file=sys.stderr, flush=True)
    return runs, floors


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def markdown(runs: list[dict[str, Any]], floors: list[dict[str, Any]]) -> str:
    rows = [
        "| cohort | patients | version | seconds | cases/s | peak MiB | end-to-end / floor | CPU s"
        " | CPU / floor | refused |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for floor in floors:
        where = (floor["cohort"], floor["size"])
        for run in (r for r in runs if (r["cohort"], r["size"]) == where):
            rows.append(
                _row(
                    run["cohort"],
                    f"{run['size']:,}",
                    run["version"],
                    f"{run['seconds']:.1f}",
                    f"{run['cases_per_s']:.0f}",
                    f"{run['peak_mib']:.0f}",
                    f"{run['vs_floor']:.1f}x",
                    f"{run['cpu_seconds']:.1f}",
                    f"{run['cpu_seconds'] / floor['cpu_seconds']:.1f}x",
                    run["refused"],
                )
            )
        rows.append(
            _row(
                floor["cohort"],
                f"{floor['size']:,}",
                f"floor (read JSON + load {floor['triples']:,} triples)",
                f"{floor['seconds']:.1f}",
                f"{floor['size'] / floor['seconds']:.0f}",
                f"{floor['peak_mib']:.0f}",
                "1.0x",
                f"{floor['cpu_seconds']:.1f}",
                "1.0x",
                "",
            )
        )
    return "\n".join(rows)


def cache_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        "| cohort | patients | cache | hits | misses | hit rate | size | bound | seconds on misses |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in (r for r in runs if r["caches"]):
        for name, cache in run["caches"].items():
            looked = cache["hits"] + cache["misses"]
            rate = f"{cache['hits'] / looked:.1%}" if looked else "-"
            rows.append(
                _row(
                    run["cohort"],
                    f"{run['size']:,}",
                    name,
                    f"{cache['hits']:,}",
                    f"{cache['misses']:,}",
                    rate,
                    f"{cache['size']:,}",
                    f"{cache['bound']:,}",
                    f"{cache['seconds']:.1f}" if "seconds" in cache else "-",
                )
            )
    return "\n".join(rows)


def identical(runs: list[dict[str, Any]], other: str) -> list[dict[str, Any]]:
    """Per cohort and size: does the current checkout's output equal `other`'s byte for byte?"""
    outputs = {(r["cohort"], r["size"], r["version"]): Path(r["output"]) for r in runs}
    checks = []
    for (cohort, size, version), output in outputs.items():
        if version == "current" and (cohort, size, other) in outputs:
            theirs = outputs[(cohort, size, other)]
            line = first_difference(output, theirs)
            record = None if line is None else first_difference(output, theirs, parse=True)
            check = {"cohort": cohort, "size": size, "against": other, "first_difference": line}
            checks.append({**check, "first_different_record": record})
    return checks


def baseline(args: argparse.Namespace, workdir: Path, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The naive stack on the synthetic cohort as N-Triples, printed as before."""
    python = sys.executable
    results = []
    for size in args.baseline_sizes:
        source = cohort_file(workdir, "synthetic", size)
        nt = workdir / f"cohort-{size}.nt"
        if not nt.exists():
            subprocess.run([python, str(HERE / "to_turtle.py"), str(source), str(nt)], check=True)
        base = measure([python, str(HERE / "naive_baseline.py"), str(nt)], timeout=args.baseline_timeout)
        base_rate = size / float(base["seconds"])
        bound = "<" if not base["finished"] else ""
        line = f"{size:>9} | baseline {bound}{base_rate:.2f} cases/s, peak {float(base['peak_mib']):.0f} MiB"
        ours = [r for r in runs if (r["cohort"], r["size"], r["version"]) == ("synthetic", size, "current")]
        if ours:
            ratio = ours[0]["cases_per_s"] / base_rate
            line += f" | haip-kg/baseline {'>' if not base['finished'] else ''}{ratio:.0f}x"
        if base["finished"]:
            line += f"\n{'':>9}   baseline steps (s): {json.loads(str(base['stdout']))['steps']}"
        else:
            limit = args.baseline_timeout
            line += f"\n{'':>9}   baseline did not finish in {limit:.0f} s (killed): ratio is a lower bound"
        print(line, flush=True)
        results.append(
            {
                "size": size,
                "seconds": base["seconds"],
                "peak_mib": base["peak_mib"],
                "finished": base["finished"],
            }
        )
    return results


def _version(text: str) -> tuple[str, str]:
    name, _, path = text.partition("=")
    if not name or not path or name in ("current", "floor"):
        raise argparse.ArgumentTypeError(
            f"--version wants NAME=PATH/TO/haip-kg, NAME not current or floor: {text!r}"
        )
    return name, path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cohorts", nargs="+", choices=COHORTS, default=list(COHORTS))
    parser.add_argument(
        "--version",
        type=_version,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another haip-kg to time",
    )
    parser.add_argument("--check-identical", metavar="NAME", help="compare the current output with NAME's")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds of runs (commands take turns); the fastest is reported"
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[])
    parser.add_argument("--baseline-timeout", type=float, default=1200)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.check_identical and args.check_identical not in dict(args.version):
        parser.error(f"--check-identical {args.check_identical}: no --version of that name")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="haip-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    info = machine()
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; workdir {workdir}\n",
        flush=True,
    )
    runs, floors = evaluate_runs(args, workdir)
    print(markdown(runs, floors), flush=True)
    if any(run["caches"] for run in runs):
        print("\ncache hit rates (current checkout):\n")
        print(cache_table(runs))
    else:
        print("\n(the current checkout reports no cache statistics: `evaluate --stats` absent)")
    checks = identical(runs, args.check_identical) if args.check_identical else []
    for check in checks:
        if check["first_difference"] is None:
            verdict = "identical"
        elif check["first_different_record"] is None:
            verdict = f"bytes DIFFERENT from line {check['first_difference']}; every record equal as JSON"
        else:
            record = check["first_different_record"]
            verdict = f"DIFFERENT from line {check['first_difference']} (as JSON from line {record})"
        print(f"{check['cohort']} {check['size']:,}: current vs {check['against']}: {verdict}")
    baselines = baseline(args, workdir, runs)
    if args.json:
        figures = {
            "machine": info,
            "runs": runs,
            "floors": floors,
            "identical": checks,
            "baseline": baselines,
        }
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
