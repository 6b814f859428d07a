"""Start `haip-kg serve` on loopback for the tests/test_serve*.py modules, with its log in a file."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from haip_kg import resources

PATIENTS_QUERY = (
    "PREFIX haip: <https://w3id.org/haip/> "
    "SELECT ?p WHERE { ?d haip:verdict haip:Consider ; haip:aboutPatient ?p }"
)
"""Over the bundled examples, the patients for whom the verdict is `consider`: demo-001 and demo-006."""


@dataclass(frozen=True)
class Served:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def examples() -> str:
    return str(resources.examples_dir() / "cases.json")


@contextmanager
def haip_kg_serve(*options: str) -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="haip-serve-") as folder:
        log = Path(folder) / "stderr.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "haip_kg", "serve", "--port", "0", *options], stderr=stderr
            )
        try:
            for _ in range(1200):
                match = re.search(r"serving on (http://127\.0\.0\.1:\d+)/", log.read_text(errors="replace"))
                if match or process.poll() is not None:
                    break
                time.sleep(0.1)
            assert match, log.read_text()
            yield Served(match.group(1), log, process)
        finally:
            process.terminate()
            process.wait(30)


def request(
    url: str,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}), method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()
