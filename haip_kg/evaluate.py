"""Decide a stream of cases in batches: refuse what is malformed, decide the rest, keep input order.

Batches can be decided by several worker processes (`workers`); results still come back in input order,
and at most a few batches per worker are in flight, so memory stays flat however long the stream is.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import islice
from typing import Any

import pyoxigraph as ox

from . import casesheet, engine, keyvalidation, memo, report, validate
from .casesheet import InputError
from .inputs import Case, Item, Sheet, to_case
from .sheet_ntriples import sheet_ntriples
from .validate import Finding

Record = dict[str, Any]
BATCH_SIZE = 250
SCHEDULER_TIMEOUT = 10.0
"""Seconds to wait for a Dask scheduler to answer before the run is given up."""


class RunFailed(RuntimeError):
    """The run cannot go on (its scheduler cannot be reached, a worker process died); the message says
    why. Cases are never the cause: a bad case becomes its error record."""


@dataclass(frozen=True)
class Outcome:
    """One input case's place in the output: where it came from and its record (decision or errors)."""

    source: str
    position: int
    case_id: str | None
    record: Record

    @property
    def refused(self) -> bool:
        return "errors" in self.record

    @property
    def unreadable_file(self) -> bool:
        """A whole file that could not be read or parsed (no case in it was identified)."""
        return self.refused and self.case_id is None and self.record["errors"][0]["key"] is None

    def text(self) -> str:
        """The record as JSON, spaced as every version wrote it (`json.dumps(record, ensure_ascii=False)`),
        so that output stays byte for byte comparable across versions."""
        return _ENCODER.encode(self.record)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent from a worker process as its JSON text: the worker encodes it (in parallel), the main
        # process writes it without decoding, and a string pickles 20x faster than the nested record.
        return (_Encoded, (self.source, self.position, self.case_id, self.text(), self.refused))


_ENCODER = json.JSONEncoder(ensure_ascii=False)


class _Encoded(Outcome):
    """An Outcome that crossed a process boundary as its JSON text; its record is decoded when read."""

    _text: str
    _refused: bool

    def __init__(self, source: str, position: int, case_id: str | None, text: str, refused: bool) -> None:
        for name, value in (("source", source), ("position", position), ("case_id", case_id)):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "_refused", refused)

    @property
    def record(self) -> Record:
        return json.loads(self._text)  # type: ignore[no-any-return]

    @property
    def refused(self) -> bool:
        return self._refused

    def text(self) -> str:
        return self._text

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Encoded, (self.source, self.position, self.case_id, self._text, self._refused))


@dataclass(frozen=True)
class Batch:
    outcomes: list[Outcome]
    decisions: bytes
    """The batch's decisions as RDF (N-Triples) when asked for (`with_rdf`), else empty."""
    caches: tuple[int, dict[str, dict[str, int]]] | None = None
    """(process id, memo.cache_info()) of the process that decided it, just after."""


def error_record(case: Case, errors: Iterable[InputError]) -> Record:
    return {
        "patient": _unicode(case.case_id),
        "source": case.source,
        "errors": [{"key": e.key, "message": e.message} for e in errors],
    }


def _unicode(text: str | None) -> str | None:
    """`text` with any lone surrogate written as its escape (`\\ud800`): output must be UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if text is not None else None


def _refuse_duplicates(items: Iterable[Item]) -> Iterator[Item]:
    """Of two cases with the same id in one run, the later one is refused."""
    first: dict[str, tuple[str, int]] = {}
    for item in items:
        case_id = item.case_id
        readable = not (isinstance(item, Case) and item.errors)
        if case_id is not None and readable:
            earlier = first.setdefault(case_id, (item.source, item.position))
            if earlier != (item.source, item.position):
                message = (
                    f"duplicate id {case_id!r}: already used by case {earlier[1] + 1} of {earlier[0]}; "
                    "ids must be unique"
                )
                item = Case(item.source, item.position, case_id, None, errors=(InputError("id", message),))
        yield item


def decide_batch(items: list[Item], with_rdf: bool = False, with_facts: bool = False) -> Batch:
    """Decide one batch; the outcomes are in the order of the items.

    Case sheets that convert cleanly take the fast path: validated per (key, value) (keyvalidation.py),
    never converted to RDF, and decided by rule family (memo.py). Everything else (native RDF, sheets
    with errors or refused by the shapes, decisions asked for as RDF, a knowledge base whose rules or
    shapes do not allow it) is converted and decided per patient (decide_cases). With `with_facts`, each
    decided record has its "facts" (report.facts)."""
    fast: dict[int, list[Finding]] = {}
    if not with_rdf and memo.usable() is None:
        clean = [
            (i, item.data)
            for i, item in enumerate(items)
            if isinstance(item, Sheet) and sheet_ntriples(item.data) is not None
        ]
        found = keyvalidation.sheet_findings(clean) if clean else {}
        if found is not None:
            fast = {
                i: found.get(i, [])
                for i, _sheet in clean
                if not any(f.severity == "violation" for f in found.get(i, []))
            }
    made: tuple[list[Record], list[list[dict[str, str]]]] | None = None
    memoize = not with_rdf
    if fast:
        try:
            made = memo.records([items[i].data for i in fast], with_facts)  # type: ignore[union-attr]
        except report.KnowledgeBaseError:
            raise
        except Exception:  # no case may end a run: whatever the fast path cannot take, the batch is
            fast, made, memoize = {}, None, False  # decided per patient, each case on its own
    outcomes: dict[int, Outcome] = {}
    rest = [i for i in range(len(items)) if i not in fast]
    if rest:

        def decide(data: bytes, store: ox.Store) -> engine.Backend:
            return engine.decide(data, store, materialize=with_rdf)

        slow = decide_cases(
            [to_case(items[i]) for i in rest], decide, with_rdf, memoize=memoize, with_facts=with_facts
        )
        outcomes.update(zip(rest, slow.outcomes, strict=True))
        decisions = slow.decisions
    else:
        decisions = b""
    if made is not None:
        sheets = [items[i] for i in fast]
        for (i, findings), sheet, body, warnings in zip(fast.items(), sheets, *made, strict=True):
            record = decided_record(sheet.case_id, sheet.source, body, findings, warnings)
            outcomes[i] = Outcome(sheet.source, sheet.position, sheet.case_id, record)
    caches = {**memo.cache_info(), "validation": keyvalidation.cache_info()}
    return Batch([outcomes[i] for i in range(len(items))], decisions, (os.getpid(), caches))


def decided_record(
    case_id: str | None,
    source: str,
    body: Record,
    findings: Iterable[Finding],
    warnings: list[dict[str, str]],
) -> Record:
    """A decided case's record: its decisions (`body`), its validation results (the findings that are not
    violations, then the conflict warnings), its source and the consensus."""
    results = [
        {"severity": f.severity, "key": f.key, "message": f.message, "shape": f.shape}
        for f in findings
        if f.severity != "violation"
    ] + warnings
    return {
        "patient": case_id,
        **body,
        "validation": {"conforms": True, "results": results},
        "source": source,
        "consensus": report.consensus(),
    }


def decide_cases(
    cases: list[Case],
    decide: Callable[[bytes, ox.Store], engine.Backend],
    with_rdf: bool = False,
    source: str | None = None,
    memoize: bool = False,
    with_facts: bool = False,
) -> Batch:
    """Check each case against the input contract, have `decide` run the rules over the accepted ones
    (their data as N-Triples, and the in-memory store holding just that data, which the embedded
    backend decides in; it returns the backend holding the decisions) and build one outcome per case,
    in order. `source` overrides the cases' own source in the records. With `memoize`, a batch of case
    sheets is decided by rule family instead (memo.py: each distinct input of a family once), unless the
    knowledge base's rules do not allow it (memo.usable)."""
    readable = [(i, case) for i, case in enumerate(cases) if not case.errors]
    data = {i: engine.ntriples_of(case.triples) for i, case in readable}
    node_keys: dict[Any, str] = {}
    for _i, case in readable:
        node_keys.update(case.node_keys)
    store = validate.data_store(data.values())
    findings = validate.batch_findings([(i, case.triples, data[i]) for i, case in readable], node_keys, store)
    native = [(i, case.triples, data[i]) for i, case in readable if not case.converted]
    if native:  # checked against the vocabulary too (a case sheet cannot fail these checks)
        findings = validate.combine(findings, validate.vocabulary_findings(native))
    refused: dict[int, list[InputError]] = {
        i: list(dict.fromkeys(InputError(f.key, f.message) for f in found if f.severity == "violation"))
        for i, found in findings.items()
    }
    accepted = [i for i, _case in readable if not refused.get(i)]
    records: dict[str, Record] = {}
    warnings: dict[str, list[dict[str, str]]] = {}
    decisions = b""
    by_family = memoize and not with_rdf and memo.usable() is None
    if accepted and by_family and all(cases[i].sheet is not None for i in accepted):
        made, found = memo.records([cases[i].sheet for i in accepted], with_facts)
        for i, record, warned in zip(accepted, made, found, strict=True):
            patient = str(cases[i].patient)
            records[patient] = record
            if warned:
                warnings[patient] = warned
    elif accepted:
        if len(accepted) < len(readable):
            store = validate.data_store(data[i] for i in accepted)
        backend = decide(b"".join(data[i] for i in accepted), store)
        records = report.records(backend, with_facts)
        warnings = report.conflicts(backend)
        decisions = report.decision_graph(backend) if with_rdf else b""
    outcomes = []
    for i, case in enumerate(cases):
        if case.errors or refused.get(i):
            record = error_record(case, case.errors or refused[i])
        else:
            patient = str(case.patient)
            record = decided_record(
                case.case_id,
                source or case.source,
                records[patient],
                findings.get(i, []),
                warnings.get(patient, []),
            )
        outcomes.append(Outcome(case.source, case.position, case.case_id, record))
    return Batch(outcomes, decisions)


def warm_up() -> None:
    """Load everything a batch needs once (before forking workers, so they share it)."""
    engine.knowledge_base_ntriples()
    engine.tbox_axioms()
    for stage in engine.STAGES_BEFORE_REASONING + engine.STAGES_AFTER_REASONING:
        engine.rules(stage)
    casesheet.mapping()
    validate.prepare()
    keyvalidation.prepare()
    sheet_ntriples({})  # builds its writers
    memo.usable()  # reads queries/families.json (or analyses the rules)
    report.statements()
    report.consensus()


def tune_for_throughput() -> None:
    """For a long run (the command line): load everything once, then hide it from the cyclic garbage
    collector (gc.freeze, which also keeps it shared with forked workers) and collect young objects less
    often. A batch makes hundreds of thousands of short-lived objects, nearly all freed by reference
    counting, so the default collector runs often for little: about 5-8% of a run here."""
    warm_up()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _ordered_parallel(
    task: Callable[[list[Item], bool, bool], Batch],
    batches: Iterator[list[Item]],
    workers: int,
    with_rdf: bool,
    with_facts: bool = False,
) -> Iterator[Batch]:
    """Results of `task` over `batches`, in order, with at most 2 batches per worker in flight."""
    warm_up()
    context = multiprocessing.get_context("fork")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_leave_interrupts)
    pending: deque[Future[Batch]] = deque()
    try:
        for batch in batches:
            pending.append(pool.submit(task, batch, with_rdf, with_facts))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool as error:
        raise RunFailed(f"a worker process died (out of memory?): {error}") from error
    finally:  # on an interruption or failure, do not wait for the batches still queued
        pool.shutdown(wait=True, cancel_futures=True)


def _leave_interrupts() -> None:
    """Workers ignore Ctrl-C: the main process stops the run (and reports it) once, without a traceback
    from every worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ordered_dask(
    batches: Iterator[list[Item]], scheduler: str, with_rdf: bool, with_facts: bool = False
) -> Iterator[Batch]:
    """Results of `decide_batch` over `batches` on a Dask distributed cluster, in order, bounded."""
    try:
        from distributed import Client  # optional dependency: pip install 'haip-kg[dask]'
    except ImportError as error:
        raise RunFailed("--scheduler needs Dask distributed: pip install 'haip-kg[dask]'") from error
    try:
        client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, TypeError) as error:
        raise RunFailed(f"cannot reach the Dask scheduler at {scheduler}: {error}") from error
    with client:
        try:
            slots = 2 * max(1, len(client.scheduler_info().get("workers", {})))
            pending: deque[Any] = deque()
            for batch in batches:
                pending.append(client.submit(decide_batch, batch, with_rdf, with_facts, pure=False))
                if len(pending) >= slots:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except OSError as error:
            raise RunFailed(f"lost the Dask scheduler at {scheduler}: {error}") from error


def evaluate(
    items: Iterable[Item],
    batch_size: int = BATCH_SIZE,
    with_rdf: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    with_facts: bool = False,
) -> Iterator[Batch]:
    """Batches of outcomes covering every case, in input order, `batch_size` cases at a time: in this
    process, in `workers` local processes, or on the Dask distributed cluster at `scheduler`. With
    `with_facts`, each decided record has its "facts" (report.facts)."""
    stream = _refuse_duplicates(items)
    batches = iter(lambda: list(islice(stream, batch_size)), [])
    if scheduler:
        yield from _ordered_dask(batches, scheduler, with_rdf, with_facts)
    elif workers <= 1:
        for batch in batches:
            yield decide_batch(batch, with_rdf, with_facts)
    else:
        yield from _ordered_parallel(decide_batch, batches, workers, with_rdf, with_facts)


def cache_totals(
    batches_caches: Iterable[tuple[int, dict[str, dict[str, int]]]],
) -> dict[str, dict[str, int]]:
    """The caches' counts over every process of a run: the last report of each process, summed."""
    last = dict(batches_caches)
    totals: dict[str, dict[str, int]] = {}
    for info in last.values():
        for name, counts in info.items():
            total = totals.setdefault(name, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                total[key] = total.get(key, 0) + value
    return totals
