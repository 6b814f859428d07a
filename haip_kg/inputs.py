"""Read cases from files: case-sheet JSON (object, array or {"cases": [...]}), case-sheet CSV, and
native RDF (Turtle, N-Triples, JSON-LD). Every case in a file becomes one `Case`, in file order; a file
or case that cannot be read becomes a `Case` that carries its errors, so that none is lost."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from pathlib import Path
from typing import IO, Any

import pyoxigraph as ox
from rdflib import RDF, RDFS, XSD, URIRef
from rdflib.term import Node

from . import casesheet, engine, jsonitems
from .casesheet import BadNumber, InputError, Triple
from .limits import MAX_CASE_CHARS, LimitExceeded, check_json
from .namespaces import DCTERMS, HAIP

CASE_SHEET_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv")
RDF_FORMATS = {".ttl": "turtle", ".nt": "nt", ".jsonld": "json-ld"}
_OX_FORMATS = {
    "turtle": ox.RdfFormat.TURTLE,
    "nt": ox.RdfFormat.N_TRIPLES,
    "json-ld": ox.RdfFormat.JSON_LD,
}
ON_DISK_BYTES = 256 * 2**20
"""An RDF file larger than this is loaded into a temporary on-disk Oxigraph store, so memory stays flat
(an in-memory store takes about 350 bytes a triple, 220 MiB for 10,000 patients; reading cases out of
the on-disk store is about 3x slower)."""


@dataclass(frozen=True)
class Case:
    source: str
    position: int
    case_id: str | None
    patient: URIRef | None
    triples: tuple[Triple, ...] = ()
    errors: tuple[InputError, ...] = ()
    node_keys: Mapping[Node, str] = field(default_factory=dict)
    converted: bool = False
    """Made from a case sheet by the converter (only the mapping's vocabulary), not read as native RDF."""
    sheet: Any = None
    """The case sheet it was made from (converted cases)."""


@dataclass(frozen=True)
class Sheet:
    """A case sheet as read (a parsed JSON object or typed CSV row), converted to RDF where it is decided."""

    source: str
    position: int
    data: Any

    @property
    def case_id(self) -> str | None:
        raw = self.data.get("id") if isinstance(self.data, dict) else None
        return raw if isinstance(raw, str) and raw.strip() else None


Item = Case | Sheet


CASE_SUFFIXES = (*CASE_SHEET_SUFFIXES, *RDF_FORMATS)
"""Every suffix a case file can have; a suffix is read in any letter case (`.JSON` is `.json`)."""


@dataclass(frozen=True)
class Expansion:
    """The files to read, and the files a folder holds that are not case files (reported, not read)."""

    files: list[str]
    skipped: list[str]


def expand(paths: list[str]) -> list[str]:
    """Files to read: a directory stands for its case files (not recursive; *.expected.json skipped)."""
    return expand_folders(paths).files


def expand_folders(paths: list[str]) -> Expansion:
    """Like `expand`, and also the files in the folders that are not case files (for a notice)."""
    files: list[str] = []
    skipped: list[str] = []
    for given in paths:
        path = Path(given)
        if given != "-" and path.is_dir():
            for entry in sorted(path.iterdir()):
                if not entry.is_file() or entry.name.lower().endswith(".expected.json"):
                    continue
                (files if entry.suffix.lower() in CASE_SUFFIXES else skipped).append(str(entry))
        else:
            files.append(given)
    return Expansion(files, skipped)


def read(source: str) -> Iterator[Case]:
    """All cases in one file ('-' is standard input, JSON or Turtle), converted to RDF."""
    return (to_case(item) for item in read_items(source))


def read_items(source: str) -> Iterator[Item]:
    """All cases in one file, case sheets not yet converted; JSON arrays, `{"cases": [...]}` files that
    start with that key, and JSON Lines are streamed, each case within the limits of `limits.py`."""
    suffix = Path(source).suffix.lower() if source != "-" else ""
    try:
        if source == "-":
            yield from _from_stdin(sys.stdin.buffer)
            return
        if suffix in (".jsonl", ".ndjson"):
            yield from _from_json_lines(source)
            return
        if RDF_FORMATS.get(suffix) == "json-ld":  # JSON: held to the depth limit before any parser runs
            text = Path(source).read_text(encoding="utf-8-sig")
            try:
                check_json(text)
            except LimitExceeded as error:
                yield Case(source, 0, None, None, errors=(InputError(None, f"{source}: {error}"),))
                return
            yield from _from_rdf(source, text, "json-ld")
            return
        if suffix in RDF_FORMATS:
            yield from _from_rdf(source, None, RDF_FORMATS[suffix])
            return
        if suffix == ".json":
            with open(source, "rb") as handle:
                yield from _from_json_file(source, handle)
            return
        if suffix == ".csv":
            text = Path(source).read_text(encoding="utf-8-sig")
            yield from _sheets(source, _csv_rows(text))
            return
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        yield _unreadable(source, error)
        return
    message = (
        f"{source}: unknown file type {suffix!r}; use .json, .jsonl, .ndjson or .csv case sheets, "
        "or .ttl, .nt, .jsonld"
    )
    yield Case(source, 0, None, None, errors=(InputError(None, message),))


def _unreadable(source: str, error: Exception) -> Case:
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return Case(source, 0, None, None, errors=(InputError(None, f"cannot read {source}: {reason}"),))


_WRAPPER = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"cases"\s*:\s*(?=\[)')
_HEAD_BYTES = 64 * 1024


def _from_stdin(stream: IO[bytes]) -> Iterator[Item]:
    """Standard input: JSON (streamed like a file) when it starts with [ or {, else Turtle."""
    head = stream.read(_HEAD_BYTES)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{"):
        yield from _from_json_file("-", stream, head)
        return
    text = (head + stream.read()).decode("utf-8-sig")
    yield from _from_rdf("-", text, "turtle")


def _from_json_file(source: str, handle: IO[bytes], head: bytes = b"") -> Iterator[Item]:
    """A .json file: an array, or a `{"cases": [...]}` object that starts with that key, is read one
    case at a time; any other object (one case, another wrapper, or JSON-LD) is read whole."""
    head += handle.read(_HEAD_BYTES - len(head))
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    wrapper = _WRAPPER.match(head)
    if stripped[:1] == b"[" or wrapper:
        start = wrapper.end() if wrapper else 0
        tail = jsonitems.Tail()
        chunks = jsonitems.chunks_of(handle, head[start:])
        position = 0
        for position, raw in enumerate(jsonitems.split_array(chunks, tail)):
            yield _item(source, position, raw)
        if not _tail_ok(tail.text, wrapper is not None):
            message = f"{source} is not valid JSON after its last case: {tail.text[:40]!r}"
            yield Case(source, position + 1, None, None, errors=(InputError(None, message),))
        return
    text = (head + handle.read()).decode("utf-8-sig")
    yield from _from_json(source, text)


def _item(source: str, position: int, raw: jsonitems.Raw | jsonitems.Refused) -> Item:
    read = jsonitems.item(raw) if isinstance(raw, jsonitems.Raw) else jsonitems.Item(error=raw.message)
    if read.error is not None:
        message = f"case {position + 1} of {source}: {read.error}"
        return Case(source, position, None, None, errors=(InputError(None, message),))
    return Sheet(source, position, read.value)


def _tail_ok(tail: bytes, wrapper: bool) -> bool:
    """Only whitespace may follow an array; only the rest of its object, without an id, a case list."""
    if not wrapper:
        return not tail.strip()
    rest = tail.strip()
    if rest == b"}":
        return True
    try:
        others = json.loads(b"{" + rest[1:]) if rest[:1] == b"," else None
    except ValueError:
        return False
    return isinstance(others, dict) and "id" not in others


def _from_json_lines(source: str) -> Iterator[Item]:
    """JSON Lines: one case sheet per line; a bad line (not UTF-8, not JSON, too long, too deep) is an
    error record, the other lines are read. A line is never held longer than the size limit."""
    limit = jsonitems.MAX_ITEM_BYTES
    with open(source, "rb") as handle:
        position = 0
        number = 0
        while line := handle.readline(limit + 1):
            number += 1
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            too_long = len(line) > limit
            while len(line) > limit and not line.endswith(b"\n"):
                line = handle.readline(limit + 1) or b"\n"  # skip the rest of the line
            if not too_long and not line.strip():
                continue
            try:
                if too_long:
                    raise LimitExceeded(jsonitems.too_long())
                yield Sheet(source, position, jsonitems.loads(line))
            except (LimitExceeded, ValueError) as error:
                detail = str(error) if isinstance(error, LimitExceeded) else f"not valid JSON: {error}"
                message = f"{source} line {number}: {detail}"
                yield Case(source, position, None, None, errors=(InputError(None, message),))
            position += 1


def to_case(item: Item) -> Case:
    """Convert a case sheet to RDF (a Case is returned as it is)."""
    if isinstance(item, Case):
        return item
    sheet = item.data
    conversion = casesheet.convert(sheet)
    case_id = item.case_id
    errors = tuple(_with_suggestion(e) for e in conversion.errors)
    return Case(
        item.source,
        item.position,
        case_id,
        conversion.patient if case_id else None,
        conversion.triples,
        errors,
        conversion.node_keys,
        converted=True,
        sheet=sheet,
    )


def _from_json(source: str, text: str) -> Iterator[Item]:
    """A JSON document read whole: one case, `{"cases": [...]}`, or JSON-LD. Its depth is checked before
    it is parsed; one case is also held to the size limit (a case list or JSON-LD may be longer)."""
    try:
        check_json(text)
        data = jsonitems.parse(text)
    except LimitExceeded as error:
        yield Case(source, 0, None, None, errors=(InputError(None, f"{source}: {error}"),))
        return
    except ValueError as error:
        yield Case(source, 0, None, None, errors=(InputError(None, f"{source} is not valid JSON: {error}"),))
        return
    if isinstance(data, dict) and "@context" in data:
        yield from _from_rdf(source, text, "json-ld")
        return
    if isinstance(data, dict) and isinstance(data.get("cases"), list) and "id" not in data:
        data = data["cases"]
    elif len(text) > MAX_CASE_CHARS:
        message = f"{source}: {jsonitems.too_long()}"
        yield Case(source, 0, None, None, errors=(InputError(None, message),))
        return
    yield from _sheets(source, data if isinstance(data, list) else [data])


def _sheets(source: str, sheets: list[Any]) -> Iterator[Item]:
    for position, sheet in enumerate(sheets):
        if isinstance(sheet, _CsvError):
            yield Case(source, position, sheet.case_id, None, errors=sheet.errors)
        else:
            yield Sheet(source, position, sheet)


def _from_sheets(source: str, sheets: list[Any]) -> Iterator[Case]:
    """Case sheets already parsed, converted to RDF."""
    return (to_case(item) for item in _sheets(source, sheets))


def _with_suggestion(error: InputError) -> InputError:
    if error.key is None or not error.message.startswith("unknown key"):
        return error
    names = list(casesheet.mapping().keys)
    close = get_close_matches(error.key, names, n=1)
    return InputError(error.key, error.message + (f" Did you mean {close[0]!r}?" if close else ""))


# --- CSV: the same keys as columns (docs/case-sheet.md) -------------------------------------------------


@dataclass(frozen=True)
class _CsvError:
    case_id: str | None
    errors: tuple[InputError, ...]


_BOOLEAN_CELLS = {"true": True, "false": False, "yes": True, "no": False}
"""How a boolean cell is written (docs/case-sheet.md), in any letter case: `TRUE`, `Yes` and `no` count."""


def _csv_rows(text: str) -> list[Any]:
    csv.field_size_limit(MAX_CASE_CHARS)  # a cell over it is a csv.Error: the file is refused, with a message
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:  # a row would keep only the last of the cells: refuse every row rather than lose one
        message = f"the header names the column(s) {', '.join(map(repr, twice))} more than once"
        return [_CsvError(None, (InputError(None, message),)) for _row in reader]
    return [_csv_case(row, line) for line, row in enumerate(reader, start=2)]


def _typed(cell: str, key: casesheet.KeyDef) -> Any:
    """A CSV cell as the JSON value it stands for (left as text when it is not of the key's type)."""
    if key.datatype == XSD.boolean:
        return _BOOLEAN_CELLS.get(cell.lower(), cell)
    if key.datatype == XSD.integer:
        try:
            return int(cell)
        except ValueError:
            return cell
    if key.datatype == XSD.decimal:
        try:
            number = float(cell)
        except ValueError:
            return cell
        return number if math.isfinite(number) else BadNumber(cell)
    return cell


def _csv_case(row: dict[str | None, Any], line: int) -> Any:
    table = casesheet.mapping()
    case: dict[str, Any] = {}
    errors: list[InputError] = []
    for column, raw in row.items():
        if column is None:
            errors.append(InputError(None, f"row {line} has more cells than the header"))
            continue
        cell = (raw or "").strip()
        if not cell or column.startswith("_"):
            continue
        lab, _, part = column.rpartition("_")
        if column in table.keys and table.keys[column].shape in ("scalar", "list"):
            key = table.keys[column]
            if key.shape == "list":
                case[column] = [] if cell == "none" else [_typed(c.strip(), key) for c in cell.split(";")]
            else:
                case[column] = _typed(cell, key)
        elif column in table.keys and table.keys[column].shape == "object-list":
            case[column], line_errors = _csv_lines(column, cell, table, line)
            errors += line_errors
        elif lab in table.keys and table.keys[lab].shape == "object" and part in table.sub_keys[lab]:
            field_def = table.sub_keys[lab][part]
            case.setdefault(lab, {})[part] = _typed(cell, field_def)
        else:
            case[column] = cell  # reported by the converter as an unknown key
    if errors:
        return _CsvError(case.get("id"), tuple(errors))
    return case


def _csv_lines(
    column: str, cell: str, table: casesheet.CaseSheetMapping, row: int
) -> tuple[list[Any], list[InputError]]:
    """A cell of an object-list key (`systemic_lines`): `;`-separated lines of `|`-separated fields in the
    mapping's order (regimen|setting|...); a line with more fields than that is refused, not cut."""
    if cell == "none":
        return [], []
    fields = table.sub_keys[column]
    names = table.cell_fields(column)
    lines: list[Any] = []
    errors: list[InputError] = []
    for index, item in enumerate(cell.split(";")):
        cells = [c.strip() for c in item.split("|")]
        lines.append({name: _typed(c, fields[name]) for name, c in zip(names, cells, strict=False) if c})
        if len(cells) > len(names):
            message = f"row {row}: {column}[{index}] has {len(cells)} fields; a line is {'|'.join(names)}"
            errors.append(InputError(f"{column}[{index}]", message))
        elif not any(cells):  # `a;` or `;;`: a course with nothing recorded is a typing slip, not a course
            message = f"row {row}: {column}[{index}] is empty (a ';' too many?); a line is {'|'.join(names)}"
            errors.append(InputError(f"{column}[{index}]", message))
    return lines, errors


# --- native RDF -----------------------------------------------------------------------------------------


def _from_rdf(source: str, text: str | None, rdf_format: str) -> Iterator[Case]:
    """The patients of an RDF document (`text`, or the file `source` when text is None), each with the
    triples reachable from it. The document is parsed by Oxigraph into a store (in memory, or in a
    temporary on-disk store for large files) and cases are read out of it one at a time."""
    with tempfile.TemporaryDirectory(prefix="haip-rdf-") as folder:
        large = text is None and Path(source).stat().st_size > ON_DISK_BYTES
        store = ox.Store(folder) if large else ox.Store()
        try:
            if text is not None:
                store.load(text, format=_OX_FORMATS[rdf_format], base_iri=_base(source))
            elif large:
                store.bulk_load(path=source, format=_OX_FORMATS[rdf_format], base_iri=_base(source))
            else:
                store.load(path=source, format=_OX_FORMATS[rdf_format], base_iri=_base(source))
        except (SyntaxError, ValueError, OSError) as error:
            message = f"{source} is not valid {rdf_format}: {error}"
            yield Case(source, 0, None, None, errors=(InputError(None, message),))
            return
        yield from cases_in_store(store, source)


def _base(source: str) -> str | None:
    return None if source == "-" else Path(source).resolve().as_uri()


_PATIENT = ox.NamedNode(str(HAIP.Patient))
_TYPE = ox.NamedNode(str(RDF.type))
_IDENTIFIER = ox.NamedNode(str(DCTERMS.identifier))


def cases_in_store(store: ox.Store, source: str) -> Iterator[Case]:
    """Every haip:Patient in the default graph of an Oxigraph store, in IRI order, as a Case holding the
    triples reachable from it (stopping at other patients), its blank nodes named by Skolem IRIs; then an
    error record for each patient typed only in a named graph (never dropped silently)."""
    graph = ox.DefaultGraph()
    patients = sorted(
        (q.subject for q in store.quads_for_pattern(None, _TYPE, _PATIENT, graph)), key=lambda t: str(t)
    )
    elsewhere = sorted(  # a patient typed only in a named graph would be lost silently: reported below
        {
            str(q.subject)
            for q in store.quads_for_pattern(None, _TYPE, _PATIENT, None)
            if not isinstance(q.graph_name, ox.DefaultGraph)
        }
        - {str(p) for p in patients}
    )
    if not patients and not elsewhere:
        yield Case(source, 0, None, None, errors=(InputError(None, f"{source} describes no haip:Patient"),))
        return
    yield from _patients(store, source, patients)
    for position, subject in enumerate(elsewhere, start=len(patients)):
        message = (
            f"{subject} is a haip:Patient only in a named graph, which is not read: state the patient and "
            "its record in the default graph (in-place mode: the --data-graph)"
        )
        yield Case(source, position, subject.strip("<>"), None, errors=(InputError(None, message),))


def _patients(store: ox.Store, source: str, patients: list[Any]) -> Iterator[Case]:
    """Each patient of the default graph as a Case, or a Case with the error that keeps it from being read."""
    graph = ox.DefaultGraph()
    for position, patient in enumerate(patients):
        identifier: Any = next(iter(store.quads_for_pattern(patient, _IDENTIFIER, None, graph)), None)
        named_by = identifier.object if identifier is not None else patient
        case_id = str(named_by.value if isinstance(named_by, ox.Literal) else getattr(patient, "value", ""))
        if not isinstance(patient, ox.NamedNode):
            yield Case(
                source,
                position,
                case_id,
                None,
                errors=(InputError(None, "a patient must be named by an IRI, not a blank node"),),
            )
            continue
        try:
            read = _without_triple_terms(reachable(store, patient))
            named = skolemized(patient, read)
        except BlankNodeShapeError as error:
            yield Case(source, position, case_id, None, errors=(InputError(None, str(error)),))
            continue
        triples = tuple(
            (engine.from_ox(s), engine.from_ox(p), engine.from_ox(_as_declared(p, o))) for s, p, o in named
        )
        yield Case(source, position, case_id, URIRef(patient.value), triples)


_XSD = "http://www.w3.org/2001/XMLSchema#"
_INTEGER_TYPES = frozenset(
    _XSD + name
    for name in (
        "integer",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "long",
        "int",
        "short",
        "byte",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
    )
)
"""XSD's datatypes derived from xsd:integer, hence from xsd:decimal (XML Schema 1.1 Part 2, section 3.4)."""
_DECIMAL = ox.NamedNode(_XSD + "decimal")
_INTEGER_LEXICAL = re.compile(r"[+-]?[0-9]+")
"""xsd:integer's lexical space (an ill-typed literal such as "++2" is left for the shapes to refuse)."""


@cache
def _decimal_properties() -> frozenset[ox.NamedNode]:
    """The datatype properties whose declared range is xsd:decimal (queries/mapping/decimal-properties.rq)."""
    return frozenset(
        ox.NamedNode(str(row["property"])) for row in casesheet.mapping_rows("decimal-properties")
    )


def _as_declared(predicate: Any, value: Any) -> Any:
    """An integer stated for a property whose range is xsd:decimal, as the xsd:decimal it is (`2` and `2.0`
    state the same fact in native RDF); any other term as it is."""
    if (
        isinstance(value, ox.Literal)
        and value.datatype.value in _INTEGER_TYPES
        and predicate in _decimal_properties()
        and _INTEGER_LEXICAL.fullmatch(value.value.strip())
    ):
        return ox.Literal(value.value.strip().lstrip("+") or "0", datatype=_DECIMAL)
    return value


def reachable(store: ox.Store, start: ox.NamedNode) -> Iterator[tuple[Any, Any, Any]]:
    """The triples about the patient and the nodes it links to by haip: properties, rdf:type and
    rdfs:subClassOf (stopping at other patients and at the knowledge base's own terms). A node linked only
    by another vocabulary's predicate (rdfs:seeAlso, a FHIR link) is not patient data the rules read, so it
    is not followed: a store's shared graph (a hospital's record of a ward, the ontology loaded beside the
    data) is not copied into every patient, and what it says is neither read nor blamed on the patient."""
    graph = ox.DefaultGraph()
    seen: set[Any] = {start}
    todo: list[Any] = [start]
    terms = _knowledge_base_terms()
    while todo:
        subject = todo.pop()
        about = [
            (quad.predicate, quad.object) for quad in store.quads_for_pattern(subject, None, None, graph)
        ]
        if subject != start and (_TYPE, _PATIENT) in about:
            continue  # another patient
        for predicate, node in about:
            yield (subject, predicate, node)
            if (
                isinstance(node, ox.NamedNode | ox.BlankNode)
                and node not in seen
                and (predicate.value.startswith(_HAIP) or predicate in _SCHEMA_LINKS)
                and node not in terms
            ):
                seen.add(node)
                todo.append(node)


_HAIP = str(HAIP)
_SCHEMA_LINKS = frozenset({_TYPE, ox.NamedNode(str(RDFS.subClassOf))})
"""Followed too: a class the data defines, and its subclass axioms (SHACL targets follow them)."""


@cache
def _knowledge_base_terms() -> frozenset[ox.NamedNode]:
    """Every IRI the ontology files describe (classes, properties, value-set individuals): a link to one is
    a value, not a node of the patient's record."""
    return frozenset(ox.NamedNode(str(row["term"])) for row in casesheet.mapping_rows("knowledge-base-terms"))


SKOLEM_PATH = "/.well-known/genid/"
"""Blank nodes below a patient are named <patient IRI>/.well-known/genid/<name> (see skolemized)."""


class BlankNodeShapeError(ValueError):
    """The blank nodes below a patient do not form a tree, or hold what a case cannot (a triple term)."""


def _without_triple_terms(triples: Iterable[tuple[Any, Any, Any]]) -> Iterator[tuple[Any, Any, Any]]:
    """The triples as they are, refusing an RDF 1.2 triple term (`<<( s p o )>>`), which no case holds."""
    for triple in triples:
        if any(isinstance(term, ox.Triple) for term in triple):
            raise BlankNodeShapeError(
                f"a triple term (RDF 1.2 <<( ... )>>) is the object of {triple[1]}: a case holds no triple "
                "terms; state the fact as a plain triple"
            )
        yield triple


def skolemized(patient: ox.NamedNode, triples: Iterable[tuple[Any, Any, Any]]) -> list[tuple[Any, Any, Any]]:
    """The triples with every blank node replaced by a Skolem IRI (RDF 1.1 Concepts, section 3.5), so that
    the rules can name what they derive from any node. A blank node is named after the node that links to
    it, the link and a hash of its own description (its triples, the blank nodes among them by their
    descriptions, recursively): the names follow from the triples alone, not from their order, the file's
    blank node labels or the run, and two identical nodes (two identical regimen courses) keep two names
    (numbered; being identical, either numbering gives the same triples). Each name is under the patient's
    IRI: a blank node reached from two patients becomes one node for each.

    The blank nodes must form a tree (each linked from exactly one place, as Turtle's [ ... ] writes
    them); otherwise BlankNodeShapeError. (W3C RDFC-1.0 canonicalization names any graph, but takes time
    exponential in groups of identical blank nodes: seconds for two identical histories of eight courses.)"""
    triples = list(triples)
    links: dict[Any, list[tuple[Any, Any]]] = {}
    incoming: dict[Any, int] = {}
    for s, p, o in triples:
        links.setdefault(s, []).append((p, o))
        if isinstance(o, ox.BlankNode):
            incoming[o] = incoming.get(o, 0) + 1
    blanks = {t for s, _p, o in triples for t in (s, o) if isinstance(t, ox.BlankNode)}
    if not blanks:
        return triples
    if any(incoming.get(b, 0) != 1 for b in blanks):
        raise BlankNodeShapeError(
            "a blank node below the patient is linked from more than one place: blank nodes must form a "
            "tree ([ ... ] in Turtle); name a node that is linked from two places with an IRI"
        )
    description: dict[Any, str] = {}
    order: list[Any] = []  # blank nodes, each after the blank nodes it links to
    todo: list[tuple[Any, bool]] = [(b, False) for b in blanks]
    while todo:
        node, children_done = todo.pop()
        if node in description:
            continue
        if children_done:
            order.append(node)
            description[node] = ""  # placeholder until computed below, in order
            continue
        todo.append((node, True))
        todo += [(o, False) for _p, o in links.get(node, []) if isinstance(o, ox.BlankNode)]
    for node in order:
        lines = sorted(
            f"{p} {description[o] if isinstance(o, ox.BlankNode) else o}" for p, o in links.get(node, [])
        )
        description[node] = hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    names: dict[Any, ox.NamedNode] = {}
    parents = [t for t in links if not isinstance(t, ox.BlankNode)]
    while parents:
        parent = parents.pop()
        parent_name = parent.value if not isinstance(parent, ox.BlankNode) else names[parent].value
        twins: dict[tuple[str, str], int] = {}
        for p, o in links.get(parent, []):
            if isinstance(o, ox.BlankNode):
                key = (p.value, description[o])
                number = twins[key] = twins.get(key, -1) + 1
                digest = hashlib.sha256(f"{parent_name} {p} {description[o]} {number}".encode()).hexdigest()
                names[o] = ox.NamedNode(patient.value + SKOLEM_PATH + digest[:32])
                parents.append(o)
    return [(names.get(s, s), p, names.get(o, o)) for s, p, o in triples]
