"""`haip-kg diff`: its arguments, checked before any work (the diff itself is haip_kg.diff, imported only
when the command runs, so `--help` stays fast).

Exit codes: 0 the diff ran (whether or not anything changed); 2 a side, the cohort or the cases cannot be
used (unknown revision, missing folder, a run that failed), with one line on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .commandline import LazyOutput, case_files, kb_option, output_file, run_writing


def _fail(message: str) -> None:
    click.echo(f"haip-kg: diff: {message}", err=True)
    sys.exit(2)


def _shown(path: Path) -> str:
    """A path as the user would write it: relative to the working folder when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@click.command()
@click.argument("old")
@click.argument("new")
@click.argument("cohort", nargs=-1)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("markdown", "json")),
    default="markdown",
    show_default=True,
    help="markdown: for a panel meeting (headings, tables); json: for tools.",
)
@click.option(
    "-o",
    "--output",
    callback=output_file,
    default="-",
    help="Output file ('-': stdout); its folder must exist.",
)
@click.option(
    "--cases",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of hand-written cases (<id>.json|.ttl with <id>.expected.json) to check NEW against "
    "[default: NEW's tests/cases, else the installed knowledge base's].",
)
@click.option(
    "--accept",
    is_flag=True,
    help="After the diff is written, rewrite the expected files NEW no longer holds with NEW's decisions.",
)
@kb_option
def diff(
    old: str,
    new: str,
    cohort: tuple[str, ...],
    fmt: str,
    output: LazyOutput | None,
    cases: Path | None,
    accept: bool,
    kb: str | None,
) -> None:
    """Compare two versions of the knowledge base, OLD and NEW: what was added, removed or changed
    (terms, rules, shapes), how the decisions about the patients in COHORT (case files or folders) move,
    and which hand-written test cases NEW breaks.

    OLD and NEW are each a knowledge-base folder; a git revision of the repository here (git:REV, or
    anything `git rev-parse` resolves); or the knowledge base (--kb, else the installed one) under
    readings: reading:NAME=ALTERNATIVE[,NAME=ALTERNATIVE...] or profile:NAME. Each side decides in a
    fresh `haip-kg evaluate` process. Two runs give the same bytes.
    """
    from . import diff as diffing
    from . import resources

    if cohort:
        case_files(cohort)  # a usage error for a path that does not exist or is no case file
    current = resources.root()
    with diffing.workspace() as work:
        try:
            old_side = diffing.side(old, current, work, Path.cwd())
            new_side = diffing.side(new, current, work, Path.cwd())
        except diffing.DiffError as error:
            _fail(str(error))
        if cases is not None:
            folder: Path | None = cases
            label = _shown(cases)
        else:
            folder, label = diffing.default_cases(new_side)
            if accept and new_side.revision is not None:
                _fail("--accept rewrites files: with NEW a git revision, give the folder with --cases")
        found: list[dict[str, object]] = []

        def write() -> None:
            try:
                document, broken = diffing.report(old_side, new_side, list(cohort), folder, label)
            except diffing.DiffError as error:
                _fail(str(error))
            found.extend(broken)
            text = diffing.as_json(document) if fmt == "json" else diffing.as_markdown(document)
            (output or sys.stdout).write(text)

        run_writing(write, output)
        if accept:
            for path in diffing.accept(found):
                click.echo(f"haip-kg: diff: rewrote {_shown(path)}", err=True)
