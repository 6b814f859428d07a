"""Peak memory of `haip-kg serve` under the nested-JSON attack: a 40 KB and a 60 KB body of nested arrays
(`[[[...]]]`) POSTed to /evaluate. Prints the answer and the server process's peak RSS (VmHWM) after each,
and the peak RSS of its worker processes, if any (Linux: /proc).

    python benchmarks/serve_memory.py                                   # this checkout
    python benchmarks/serve_memory.py --python /work/old/.venv/bin/python --cwd /work/old   # another one
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def worker_peaks(pid: int) -> list[float]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    peaks = []
    for child in children:
        try:
            peaks.append(peak_mib(int(child)))
        except (OSError, AttributeError):
            continue
    return peaks


def post(url: str, body: bytes) -> str:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except OSError as error:
        return f"no answer ({error}) after {time.perf_counter() - started:.1f} s"
    return f"{status} after {time.perf_counter() - started:.1f} s: {text[:90]!r}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", default=sys.executable, help="interpreter with haip-kg installed")
    parser.add_argument("--cwd", default=str(Path(__file__).parent.parent))
    args = parser.parse_args()
    server = subprocess.Popen(
        [args.python, "-m", "haip_kg", "serve", "--port", "0"], cwd=args.cwd, stderr=subprocess.PIPE
    )
    assert server.stderr is not None
    line = server.stderr.readline().decode()
    match = re.search(r"(http://[^/]+)/", line)
    if not match:
        raise SystemExit(f"the server did not start: {line}")
    threading.Thread(target=server.stderr.read, daemon=True).start()
    try:
        print(f"server started: peak RSS {peak_mib(server.pid):.0f} MiB")
        for size_kb in (40, 60):
            depth = size_kb * 1000 // 2
            answer = post(match.group(1) + "/evaluate", b"[" * depth + b"]" * depth)
            workers = worker_peaks(server.pid)
            print(
                f"{size_kb} KB nested body: {answer}\n"
                f"  server peak RSS {peak_mib(server.pid):.0f} MiB; "
                f"workers' peak RSS {', '.join(f'{w:.0f}' for w in workers) or '-'} MiB"
            )
    finally:
        server.terminate()
        server.wait(60)


if __name__ == "__main__":
    main()
