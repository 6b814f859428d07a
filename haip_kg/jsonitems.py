"""Case-sheet JSON read within the limits of `limits.py`, one case at a time.

A JSON array (or the array of a `{"cases": [...]}` file) is split into its items by a scan that only
follows strings and brackets, so memory stays flat however long the file is and however deep an item is
nested: an item is kept only up to the size limit, and its depth is checked before it is parsed. Each item
is then parsed on its own, so one bad item (too deep, too long, not JSON, or a number no case sheet can
hold) is that case's error and the items after it are still read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .casesheet import BadNumber
from .limits import MAX_CASE_CHARS, MAX_JSON_DEPTH, LimitExceeded, check_json

CHUNK_BYTES = 1 << 20
MAX_ITEM_BYTES = 4 * MAX_CASE_CHARS
"""An item longer than this (in UTF-8 bytes) is over MAX_CASE_CHARS whatever its characters: not kept."""

_TOKEN = re.compile(rb'(?:[^"\[\]{},]++|"[^"\\]*+(?:\\.[^"\\]*+)*+")*+(?:([\[\]{},])|(")|\Z)', re.DOTALL)
"""Everything up to the next bracket or comma outside a string, skipped in C (whole strings included), then
that bracket or comma (group 1), or a quote that opens a string the buffer ends inside (group 2), or the end
of the buffer. Possessive, so a scan never backtracks: linear in the buffer."""
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_OPEN, _CLOSE, _QUOTE, _COMMA = b"[{", b"]}", ord('"'), ord(",")


@dataclass(frozen=True)
class Item:
    """One item of a JSON array: its parsed value, or why it could not be read."""

    value: Any = None
    error: str | None = None


def loads(text: str | bytes) -> Any:
    """One case sheet's JSON, parsed after the size and depth limits are checked (LimitExceeded, or
    ValueError when it is not JSON). A number no case sheet can hold (`1e400`, `NaN`, `Infinity`, an
    integer too long to read) becomes a `BadNumber`, which the converter refuses on its key."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    check_json(text, max_chars=MAX_CASE_CHARS)
    return parse(text)


def parse(text: str) -> Any:
    """JSON text parsed, with numbers no case sheet can hold as `BadNumber`s (no limits checked)."""
    return json.loads(text, parse_float=_float, parse_int=_int, parse_constant=BadNumber)


def _float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else BadNumber(text)


def _int(text: str) -> Any:
    try:
        return int(text)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return BadNumber(text)


@dataclass(frozen=True)
class Raw:
    """An array item's bytes as the scan delimited them, and how deep its brackets go."""

    text: bytes
    depth: int


def item(raw: Raw) -> Item:
    """An array item parsed as one case sheet, or the reason it cannot be. The limits are checked
    (check_json) when the scan's depth or the length in bytes could be over them."""
    if not raw.text.strip():
        return Item(error="not valid JSON: an empty item (a comma too many?)")
    try:
        if raw.depth > MAX_JSON_DEPTH or len(raw.text) > MAX_CASE_CHARS:
            return Item(loads(raw.text))
        return Item(parse(raw.text.decode("utf-8")))
    except LimitExceeded as error:
        return Item(error=str(error))
    except (ValueError, UnicodeDecodeError) as error:
        return Item(error=f"not valid JSON: {error}")


@dataclass
class Tail:
    """What follows the array's closing bracket (kept up to MAX_ITEM_BYTES), filled in by split_array."""

    text: bytes = b""


@dataclass(frozen=True)
class Refused:
    message: str


def split_array(chunks: Iterable[bytes], tail: Tail) -> Iterator[Raw | Refused]:
    """The raw bytes of each item of the array `chunks` start with, or a Refused for an item over the
    size limit or one the document ends inside; `tail` receives the text after the array."""
    buf = b""
    pos = 0  # where scanning resumes in buf
    start = 0  # where the current item starts in buf
    depth = deepest = 0
    in_string = False
    skipping = False  # the current item is over the size limit: scanned, not kept
    items = 0
    closed = False
    for chunk in chunks:
        if closed:
            if len(tail.text) < MAX_ITEM_BYTES:
                tail.text += chunk[: MAX_ITEM_BYTES - len(tail.text)]
            continue
        buf += chunk
        while True:
            if in_string:
                end = _STRING_REST.match(buf, pos).end()  # type: ignore[union-attr]
                if end == len(buf) or buf[end] != _QUOTE:  # the string goes on in the next chunk
                    pos = end
                    break
                pos, in_string = end + 1, False
            for token in _TOKEN.finditer(buf, pos):
                if token.lastindex != 1:  # the end of the buffer, or a string that goes on after it
                    pos, in_string = token.end(), token.lastindex == 2
                    break
                at = token.start(1)
                char = buf[at]
                if char in _OPEN:
                    depth += 1
                    if depth == 1:
                        start = at + 1
                    elif depth > deepest:
                        deepest = depth
                elif char in _CLOSE or depth == 1:
                    if depth == 1:
                        raw = buf[start:at]
                        if skipping:
                            yield Refused(too_long())
                        elif items or raw.strip() or char == _COMMA:
                            yield Raw(raw, deepest - 1 if deepest else 0)
                        items += 1
                        skipping = False
                        deepest = 0
                        start = at + 1
                    if char != _COMMA:
                        depth -= 1
                    if depth == 0:
                        closed = True
                        tail.text = buf[at + 1 :][:MAX_ITEM_BYTES]
                        break
            if closed or not in_string or pos == len(buf):
                break
        if closed:
            continue
        if not skipping and pos - start > MAX_ITEM_BYTES:
            skipping = True
        keep = min(start, pos) if not skipping else pos
        buf, pos, start = buf[keep:], pos - keep, max(start - keep, 0)
    if not closed and depth > 0:
        yield Refused("not valid JSON: the file ends inside this item (is it cut short?)")


def too_long() -> str:
    return f"a case sheet longer than {MAX_CASE_CHARS:,} characters is over the limit"


def chunks_of(handle: Any, first: bytes = b"") -> Iterator[bytes]:
    """A binary file's bytes in chunks (after `first`, bytes already read from it)."""
    if first:
        yield first
    while chunk := handle.read(CHUNK_BYTES):
        yield chunk
