"""Limits on untrusted JSON, checked before any parser runs (the CLI and `haip-kg serve` both use them).

A case sheet is at most a few levels deep (a case, its `systemic_lines` list, a line; a lab object), so a
deeper document is not a case sheet: it is refused with a message instead of being handed to a parser whose
cost (and, for the standard library's, recursion) grows with the depth.
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a JSON document (a case sheet in a `{"cases": [...]}`
wrapper is 5 deep)."""

MAX_CASE_CHARS = 1_000_000
"""Longest single case sheet accepted (one JSON object, one JSON Lines line, or one array item)."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class LimitExceeded(ValueError):
    """The input is over a limit; the message says which and what to do."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, ignoring brackets inside strings (a cheap
    scan, no parse: it does not check the JSON is well formed)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def check_json(text: str, *, max_depth: int = MAX_JSON_DEPTH, max_chars: int | None = None) -> None:
    """Raise LimitExceeded when `text` is longer than `max_chars` or nested deeper than `max_depth`."""
    if max_chars is not None and len(text) > max_chars:
        raise LimitExceeded(f"JSON of {len(text):,} characters is over the limit of {max_chars:,}")
    depth = json_depth(text)
    if depth > max_depth:
        raise LimitExceeded(
            f"JSON nested {depth} levels deep is over the limit of {max_depth}; a case sheet is a few "
            "levels deep (see docs/case-sheet.md)"
        )
