"""`POST /evaluate`: case sheets (JSON, JSON Lines, CSV) or RDF in the body, the output contract out.

Status: 200 every case decided; 422 some case refused (its error record says why); 400 nothing readable.
The body's size is capped while it is read (app.py) and JSON's depth and size are checked before any
parser runs (`check_body`, in the server); reading and deciding run in a worker process (child.py).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .. import evaluate, inputs
from ..limits import LimitExceeded, check_json
from .child import Reply, text

SUFFIXES = {
    "text/turtle": ".ttl",
    "application/ld+json": ".jsonld",
    "application/n-triples": ".nt",
    "text/csv": ".csv",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
}
"""Content types read as something other than JSON case sheets (the default)."""


def _suffix(content_type: str) -> str:
    return SUFFIXES.get(content_type, ".json")


def check_body(body: bytes, content_type: str) -> Reply | None:
    """A 400 for a JSON body that is not UTF-8 or is nested too deep (the body's size is capped as it is
    read); None when it may be parsed."""
    if _suffix(content_type) not in (".json", ".jsonl", ".jsonld"):
        return None
    try:
        check_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        return text(400, "the body is not UTF-8 text")
    except LimitExceeded as error:
        return text(400, str(error))
    return None


def answer(body: bytes, content_type: str, max_cases: int) -> Reply:
    """Run in a worker (child.py): read the cases, decide them, and return the records."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"request{_suffix(content_type)}"
        path.write_bytes(body)
        items = []
        for item in inputs.read_items(str(path)):
            items.append(item)
            if len(items) > max_cases:
                return text(413, f"more than {max_cases} cases per request (use the CLI for cohorts)")
        records = [o.record for batch in evaluate.evaluate(items) for o in batch.outcomes]
    refused = [r for r in records if "errors" in r]
    status = 200 if not refused else (400 if len(refused) == len(records) else 422)
    return Reply(status, json.dumps([_anonymous(r, path) for r in records]).encode(), "application/json")


def _anonymous(record: dict[str, Any], path: Path) -> dict[str, Any]:
    """The record with the temporary file's name replaced by `request`."""
    record = dict(record)
    if record.get("source", "").endswith(path.name):
        record["source"] = "request"
    if "errors" in record:
        record["errors"] = [
            {**error, "message": error["message"].replace(str(path), "request")} for error in record["errors"]
        ]
    return record
