"""What the commands share: the checks made on the command line before any work, the output file opened
at the first write, and every way a run can fail turned into one line on stderr and a documented exit code
(see `cli`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

EXIT_FAILED, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141


def case_files(paths: tuple[str, ...]) -> list[str]:
    """The files PATHS stand for, checked before any work: a path that does not exist, or a file that
    is not a case file, is a usage error. Files a folder holds that are not case files are named on
    stderr and left out (the run goes on)."""
    from . import inputs

    for given in paths:
        path = Path(given)
        if given == "-" or path.is_dir():
            continue
        if not path.exists():
            raise click.UsageError(f"{given}: no such file or folder")
        if path.suffix.lower() not in inputs.CASE_SUFFIXES:
            raise click.UsageError(
                f"{given}: not a case file; use .json, .jsonl, .ndjson or .csv case sheets, "
                "or .ttl, .nt, .jsonld (see docs/case-sheet.md)"
            )
    found = inputs.expand_folders(list(paths))
    for skipped in found.skipped:
        click.echo(f"haip-kg: skipped {skipped}: not a case file", err=True)
    return found.files


class LazyOutput:
    """The output file, opened at the first write: a run that fails before writing anything leaves no
    file behind. Whether it can be written is checked before any work (`output_file`)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.handle: Any = None

    def write(self, data: str | bytes) -> int:
        """Write text (UTF-8) or bytes; the file is opened in the mode of the first write."""
        if self.handle is None:
            self.handle = (
                open(self.path, "wb")  # noqa: SIM115 (closed by close())
                if isinstance(data, bytes)
                else open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            )
        return int(self.handle.write(data))

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def output_file(_context: click.Context, param: click.Parameter, value: str) -> LazyOutput | None:
    """-o FILE: a usage error unless FILE can be written (its folder exists and is writable, and it is
    not a folder); '-' is standard output."""
    if value == "-":
        return None
    path = Path(value)
    folder = path.parent
    if path.is_dir():
        raise click.BadParameter(f"{value} is a folder, not a file", param=param)
    if not folder.is_dir():
        raise click.BadParameter(f"the folder {str(folder)!r} does not exist", param=param)
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise click.BadParameter(f"{value} cannot be written (permission denied)", param=param)
    return LazyOutput(value)


def http_url(_context: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A store URL must be http(s)://... (checked before any request)."""
    from urllib.parse import urlsplit

    if value is not None and not (urlsplit(value).scheme in ("http", "https") and urlsplit(value).netloc):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL", param=param)
    return value


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"haip-kg: {message}", err=True)
    sys.exit(code)


def run(work: Callable[[], None], output: str) -> None:
    """Run `work`, turning every way it can fail into one line on stderr and the documented exit code."""
    from .endpoint import EndpointError
    from .evaluate import RunFailed
    from .report import KnowledgeBaseError

    try:
        work()
    except (EndpointError, RunFailed) as error:
        _fail(str(error))
    except KnowledgeBaseError as error:
        _fail(f"the knowledge base cannot be used: {error}")
    except KeyboardInterrupt:
        _fail("interrupted; the output is incomplete", EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()
        _fail("the output was closed before the run finished (broken pipe)", EXIT_BROKEN_PIPE)
    except OSError as error:
        _fail(f"cannot write {output}: {error.strerror or error}")
    except Exception as error:
        if os.environ.get("HAIP_KG_TRACEBACK"):
            raise
        _fail(f"unexpected error ({type(error).__name__}: {error}); set HAIP_KG_TRACEBACK=1 for details")


def run_writing(write: Callable[[], None], output: LazyOutput | None) -> None:
    """`run` a command that writes its results to `output` (None: standard output), closing it after."""

    def work() -> None:
        try:
            write()
            sys.stdout.flush()
        finally:
            if output is not None:
                output.close()

    run(work, output.path if output else "standard output")


def _quiet_stdout() -> None:
    """After a broken pipe, send what is left of stdout to /dev/null so that closing it cannot fail."""
    with suppress(OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def knowledge_base(_context: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--kb PATH: use the knowledge base in the folder PATH for this run (resources.use_kb), chosen before
    anything is read; a usage error unless PATH has the knowledge-base layout."""
    from . import resources

    if value is None:
        return None
    try:
        return str(resources.use_kb(value))
    except (ValueError, RuntimeError) as error:
        raise click.BadParameter(str(error), param=param) from error


kb_option = click.option(
    "--kb",
    metavar="PATH",
    callback=knowledge_base,
    is_eager=True,
    help="Knowledge base to use: a folder with ontology/, shapes/ and queries/ [default: the installed one].",
)
"""The --kb option of the commands that read the knowledge base."""
