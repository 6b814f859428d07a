"""The `haip-kg` command line.

Exit codes: 0 every case was decided (warnings do not count) / every check passed; 1 some case was
refused or a check failed; 2 usage error (found before any work starts), no input file could be read, or
the run could not finish (store, scheduler or output failed); 130 interrupted (Ctrl-C); 141 the reader of
the output went away (broken pipe, e.g. `| head`). Every failure is one line on stderr, no traceback
(set HAIP_KG_TRACEBACK=1 to see one). What the command line alone shows to be wrong (a path that does not
exist, a file that is no case file, -o into a missing folder) is a usage error before any work; what
needs a file's content (unreadable, malformed, a bad value) is that case's error record.
Results go to stdout (or -o FILE), logs and progress to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .commandline import LazyOutput, case_files, http_url, kb_option, output_file, run, run_writing
from .diff_command import diff as diff_command
from .serve_command import serve as serve_command

if TYPE_CHECKING:
    from .evaluate import Batch
    from .inputs import Item

FORMATS = ("json", "jsonl", "markdown", "turtle")


def _items(files: list[str]) -> Iterator[Item]:
    from . import inputs

    for source in files:
        yield from inputs.read_items(source)


def _progress(quiet: bool) -> Any:
    """A progress display on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        return nullcontext(None)
    from rich.console import Console
    from rich.progress import MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _tally(outcome: Any, counts: dict[str, int], done: str, quiet: bool) -> None:
    """Count one case (as `done`, or refused), naming a refused case's errors on stderr unless quiet."""
    if not outcome.refused:
        counts[done] += 1
        return
    counts["refused"] += 1
    counts["unreadable"] += outcome.unreadable_file
    if not quiet:
        where = outcome.source + (f" case {outcome.case_id!r}" if outcome.case_id else "")
        for error in outcome.record["errors"]:
            click.echo(f"refused: {where}: {error['key'] or '-'}: {error['message']}", err=True)


def _exit(counts: dict[str, int], done: str) -> None:
    """The documented exit code: 2 when no file could be read, 1 when some case was refused, else 0."""
    if counts[done] == 0 and counts["refused"] == counts["unreadable"]:
        sys.exit(2)
    sys.exit(1 if counts["refused"] else 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="haip-kg")
def main() -> None:
    """Decide which 2014 HAIP consensus statements (doi:10.3747/co.21.1577) apply to each patient."""
    # rdflib logs a traceback for every ill-typed literal it reads ("2x"^^xsd:integer); the shapes refuse
    # such a value with a message of their own, so its log would only be noise on stderr.
    logging.getLogger("rdflib.term").setLevel(logging.CRITICAL)


def _graph_iri(_context: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A named graph option must be an absolute IRI (it is sent to the store as one)."""
    import pyoxigraph as ox

    if value is None:
        return None
    try:
        ox.NamedNode(value)
    except ValueError as error:
        raise click.BadParameter(f"{value!r} is not an absolute IRI: {error}", param=param) from error
    return value


def _choose_readings(chosen: tuple[str, ...], profiles: tuple[str, ...]) -> None:
    from . import check, readings

    try:
        readings.choose(check.knowledge_base(), chosen, profiles)
    except readings.ReadingError as error:
        raise click.BadParameter(str(error), param_hint="'--reading' / '--reading-profile'") from error


@main.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="json",
    show_default=True,
    help="json: an array in input order; jsonl: one object per line; markdown; turtle (RDF).",
)
@click.option(
    "-o",
    "--output",
    callback=output_file,
    default="-",
    help="Output file ('-': stdout); its folder must exist. Created with the first output.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    default=None,
    help="Cases decided together: a batch, or with --endpoint a partition [default: 250].",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Worker processes (with --endpoint: partitions decided at once) [default: all cores].",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display and no per-case messages on stderr.")
@click.option("--scheduler", help="Address of a Dask distributed scheduler to decide the batches on.")
@click.option(
    "--endpoint",
    callback=http_url,
    help="SPARQL 1.1 query URL of a store holding the patients (in-place mode).",
)
@click.option(
    "--store-endpoint",
    callback=http_url,
    help="Graph Store Protocol URL of that store (loads the knowledge base, keeps intermediate results, "
    "writes decisions back).",
)
@click.option("--data-graph", callback=_graph_iri, help="Named graph holding the patients in the store.")
@click.option(
    "--result-graph", callback=_graph_iri, help="Named graph to write the decisions into (RDF), replacing it."
)
@click.option(
    "--stats",
    is_flag=True,
    help="At the end, print the caches' hits, misses, sizes and bounds over all workers on stderr "
    "(one line: `cache-stats: ` and a JSON object).",
)
@click.option(
    "--reading",
    "chosen_readings",
    multiple=True,
    metavar="INTERPRETATION=ALTERNATIVE",
    help="Decide under a declared alternative reading of an interpretation (repeatable); the records name "
    "it and its decisions get their own IRIs.",
)
@click.option(
    "--reading-profile",
    "reading_profiles",
    multiple=True,
    metavar="NAME",
    help="Decide under the readings of a reading profile of the knowledge base (repeatable).",
)
@click.option(
    "--facts",
    is_flag=True,
    help='json/jsonl: add to each decided record its "facts": the truth value of each fact the '
    "explanations show (true, false or null for unknown), by slug.",
)
@kb_option
def evaluate(
    paths: tuple[str, ...],
    fmt: str,
    output: LazyOutput | None,
    batch_size: int | None,
    workers: int | None,
    quiet: bool,
    scheduler: str | None,
    endpoint: str | None,
    store_endpoint: str | None,
    data_graph: str | None,
    result_graph: str | None,
    stats: bool,
    chosen_readings: tuple[str, ...],
    reading_profiles: tuple[str, ...],
    facts: bool,
    kb: str | None,
) -> None:
    """Decide every case in PATHS: case sheets (.json, .jsonl, .ndjson, .csv) or RDF (.ttl, .nt, .jsonld),
    suffixes in any letter case; a folder means its case files (others in it are named on stderr). Every
    case gets one output entry, in input order. With --endpoint, decide the
    patients that already live in a SPARQL 1.1 store instead (they stay there; decisions can be written back).
    """
    from . import evaluate as evaluation
    from . import formats

    if bool(paths) == bool(endpoint):
        raise click.UsageError(
            "give case files (PATHS), or --endpoint with --store-endpoint and --data-graph"
        )
    if endpoint and not (store_endpoint and data_graph):
        raise click.UsageError("--endpoint needs --store-endpoint and --data-graph")
    if endpoint and scheduler:
        raise click.UsageError("--scheduler decides case files; with --endpoint the store decides")
    if (chosen_readings or reading_profiles) and scheduler:
        raise click.UsageError("--reading and --reading-profile do not reach Dask workers: drop --scheduler")
    if kb and scheduler:
        raise click.UsageError("--kb decides on this machine; the workers of --scheduler load their own")
    if facts and (endpoint or fmt not in ("json", "jsonl")):
        raise click.UsageError("--facts adds to the json and jsonl records of case files")
    if chosen_readings or reading_profiles:
        _choose_readings(chosen_readings, reading_profiles)
    files = case_files(paths)

    counts = {"decided": 0, "refused": 0, "unreadable": 0}
    caches: list[tuple[int, dict[str, dict[str, int]]]] = []
    workers = workers or os.cpu_count() or 1
    evaluation.tune_for_throughput()

    def counted(progress: Any) -> Iterator[Batch]:
        task = progress.add_task("deciding", total=None, rate="") if progress else None
        batches: Iterator[Batch]
        if endpoint:
            from .endpoint import PARTITION_SIZE, Remote, evaluate_in_place

            remote = Remote(endpoint, store_endpoint or "")
            batches = evaluate_in_place(
                remote,
                data_graph or "",
                result_graph,
                fmt == "turtle",
                batch_size or PARTITION_SIZE,
                workers=workers,
            )
        else:
            batches = evaluation.evaluate(
                _items(files),
                batch_size or evaluation.BATCH_SIZE,
                with_rdf=fmt == "turtle",
                workers=workers,
                scheduler=scheduler,
                with_facts=facts,
            )
        for batch in batches:
            if batch.caches is not None:
                caches.append(batch.caches)
            for outcome in batch.outcomes:
                _tally(outcome, counts, "decided", quiet)
            if progress:
                done = counts["decided"] + counts["refused"]
                elapsed = progress.tasks[0].elapsed or 1e-9
                progress.update(task, completed=done, rate=f"{done / elapsed:,.0f} cases/s")
            yield batch

    def write() -> None:
        with _progress(quiet) as progress:
            formats.WRITERS[fmt](counted(progress), output or sys.stdout)

    run_writing(write, output)
    if stats:
        click.echo("cache-stats: " + json.dumps(evaluation.cache_totals(caches), sort_keys=True), err=True)
    if not quiet:
        click.echo(f"haip-kg: {counts['decided']} decided, {counts['refused']} refused", err=True)
    _exit(counts, "decided")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("turtle", "nt", "jsonld")),
    default="turtle",
    show_default=True,
    help="RDF syntax of the output.",
)
@click.option(
    "-o",
    "--output",
    callback=output_file,
    default="-",
    help="Output file ('-': stdout); its folder must exist. Created with the first output.",
)
@click.option("-q", "--quiet", is_flag=True, help="No per-case messages on stderr.")
def convert(paths: tuple[str, ...], fmt: str, output: LazyOutput | None, quiet: bool) -> None:
    """Write the RDF that the case sheets in PATHS become (the input of in-place mode: load it into a store's
    named graph, then run `evaluate --endpoint`). Cases that `evaluate` would refuse are reported on stderr
    and left out."""
    from . import convert as conversion

    counts = {"converted": 0, "refused": 0, "unreadable": 0}

    def counted() -> Iterator[conversion.Converted]:
        for batch in conversion.convert(_items(files)):
            for outcome in batch.outcomes:
                _tally(outcome, counts, "converted", quiet)
            yield batch

    files = case_files(paths)

    run_writing(lambda: conversion.write(counted(), fmt, output or sys.stdout.buffer), output)
    if not quiet:
        click.echo(f"haip-kg: {counts['converted']} converted, {counts['refused']} refused", err=True)
    _exit(counts, "converted")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@kb_option
def validate(paths: tuple[str, ...], kb: str | None) -> None:
    """Check cases against the input contract (SHACL) and report findings per case, without deciding."""
    from . import evaluate as evaluation

    files = case_files(paths)
    refused = decided = 0

    def work() -> None:
        nonlocal refused, decided
        for batch in evaluation.evaluate(_items(files)):
            for outcome in batch.outcomes:
                record = outcome.record
                label = f"{outcome.source}: {record['patient'] or '(no id)'}"
                if outcome.refused:
                    refused += 1
                    click.echo(f"{label}: INVALID")
                    for error in record["errors"]:
                        click.echo(f"  - {error['key'] or '-'}: {error['message']}")
                else:
                    decided += 1
                    results = record["validation"]["results"]
                    click.echo(f"{label}: valid" + (f", {len(results)} warning(s)" if results else ""))
                    for result in results:
                        click.echo(f"  - warning {result['key']}: {result['message']}")
        sys.stdout.flush()

    run(work, "standard output")
    click.echo(f"{decided} valid, {refused} invalid", err=True)
    sys.exit(1 if refused else (2 if not decided else 0))


@main.command()
@click.option("--no-reasoner", is_flag=True, help="Skip the HermiT consistency check (no Java needed).")
@click.option(
    "--cases",
    type=click.Path(exists=True, file_okay=False),
    help="Folder of hand-written cases (<id>.json|.ttl + <id>.expected.json) to measure coverage on "
    "[default: tests/cases of a source checkout].",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@kb_option
def check(no_reasoner: bool, cases: str | None, fmt: str, kb: str | None) -> None:
    """Check the knowledge base: HermiT consistency, knowledge-base shapes, QC queries; then what the
    hand-written test cases cover (a table; gaps are warnings, declared coverage not shown is a failure)."""
    from pathlib import Path

    from . import check as checks
    from . import coverage, resources

    results = checks.run_all(with_reasoner=not no_reasoner)
    # coverage reads the statements as the records do: only over a knowledge base that passed its checks
    measured = (
        checks.case_coverage(Path(cases) if cases else resources.cases_dir())
        if all(r.passed for r in results)
        else None
    )
    if measured is not None:
        results.append(checks.coverage_check(measured))
    if fmt == "json":
        checked = [{"name": r.name, "passed": r.passed, "details": list(r.details)} for r in results]
        found = coverage.as_json(measured) if measured is not None else None
        click.echo(json.dumps({"checks": checked, "coverage": found}, indent=1))
    else:
        for result in results:
            click.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name}")
            for detail in result.details:
                click.echo(f"      {detail}")
        click.echo()
        if measured is None:
            click.echo("Test-case coverage: not measured (the knowledge base fails the checks above)")
        else:
            click.echo(coverage.table(measured), nl=False)
    sys.exit(1 if any(not r.passed for r in results) else 0)


@main.command()
@click.option("--check", "only_check", is_flag=True, help="Only report whether the generated file is stale.")
def build(only_check: bool) -> None:
    """Generate ontology/statements.ttl from the authoring source consensus/ (YAML checked by its schema).

    The same source always gives the same bytes; `haip-kg check` and the tests fail when it is stale."""
    from . import authoring

    try:
        if only_check:
            problems = authoring.stale()
            for problem in problems:
                click.echo(problem, err=True)
            sys.exit(1 if problems else 0)
        path = authoring.build()
    except authoring.AuthoringError as error:
        click.echo(f"haip-kg: the authoring source is not valid:\n{error}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path}")


main.add_command(serve_command)
main.add_command(diff_command)
