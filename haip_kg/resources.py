"""The only module that knows where the Turtle and query files live.

In an installed wheel they are package data under ``haip_kg/data``; in a source checkout they are the
top-level ``ontology/``, ``shapes/``, ``queries/`` and ``examples/`` folders. Another knowledge base with
the same layout is chosen for the process with `use_kb` (the command line's ``--kb PATH``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

KB_FOLDERS = ("ontology", "shapes", "queries")
"""The folders a knowledge base must have (examples/ is optional)."""

_chosen: Path | None = None
"""The knowledge base chosen for this process (use_kb); None: the installed one (root)."""
_read = False
"""Whether a file location was handed out already (the caches of other modules may hold what was read)."""


class NotAKnowledgeBase(ValueError):
    """A folder given as a knowledge base lacks a folder of the layout; the message names it."""


def kb_folder(path: str | Path) -> Path:
    """`path` resolved, when it is a folder with the knowledge-base layout (KB_FOLDERS); else
    NotAKnowledgeBase naming what is missing."""
    folder = Path(path).resolve()
    if not folder.is_dir():
        raise NotAKnowledgeBase(f"{path}: no such folder")
    missing = [name for name in KB_FOLDERS if not (folder / name).is_dir()]
    if missing:
        raise NotAKnowledgeBase(
            f"{path}: not a knowledge base: no {', '.join(name + '/' for name in missing)} folder "
            f"(a knowledge base holds {', '.join(name + '/' for name in KB_FOLDERS)})"
        )
    return folder


def use_kb(path: str | Path) -> Path:
    """Point the knowledge-base files at the folder `path` (the layout of root()) for the rest of this
    process, and return it resolved. Call it before anything is read: per-process caches (here and in
    the engine, validation and report modules) keep what they read, so choosing another knowledge base
    afterwards raises RuntimeError (choosing the one in use again is allowed). Forked workers inherit the
    choice."""
    global _chosen
    folder = kb_folder(path)
    if _read and folder != root():
        raise RuntimeError(f"the knowledge base {root()} was read already; choose {folder} before reading")
    _chosen = folder
    query.cache_clear()
    update.cache_clear()
    return folder


def root() -> Path:
    """The folder that holds ontology/, shapes/, queries/ and examples/: the one chosen by use_kb, else
    the installed one."""
    global _read
    _read = True
    return _chosen if _chosen is not None else installed_root()


@cache
def installed_root() -> Path:
    """The knowledge base installed with the package (data files of the wheel, or the source checkout)."""
    installed = _PACKAGE / "data"
    if (installed / "ontology").is_dir():
        return installed
    checkout = _PACKAGE.parent
    if (checkout / "ontology").is_dir():
        return checkout
    raise FileNotFoundError(f"haip-kg data files not found under {installed} or {checkout}")


def ontology_files() -> tuple[Path, ...]:
    """The TBox, the statement knowledge base and the case-sheet mapping, in load order."""
    return (*tbox_files(), statements_file(), casesheet_file())


def tbox_file() -> Path:
    return root() / "ontology" / "haip.ttl"


def tbox_files() -> tuple[Path, ...]:
    """The TBox: ontology/haip.ttl, then the knowledge base's own domain modules (every other
    ontology/*.ttl but the statements and the case-sheet mapping, by name; the HAIP knowledge base has
    none, its clinical terms are in haip.ttl)."""
    named = (tbox_file(), statements_file(), casesheet_file())
    return (tbox_file(), *(p for p in sorted((root() / "ontology").glob("*.ttl")) if p not in named))


def statements_file() -> Path:
    """The consensus's statements, facts, populations and interpretations: generated from consensus/
    (`haip-kg build`), never edited by hand."""
    return root() / "ontology" / "statements.ttl"


def casesheet_file() -> Path:
    """The case-sheet format as data (which keys, nodes and links patient data is written with)."""
    return root() / "ontology" / "casesheet.ttl"


def case_shapes_file() -> Path:
    return root() / "shapes" / "case.shapes.ttl"


def kb_shapes_file() -> Path:
    return root() / "shapes" / "kb.shapes.ttl"


def query_dir(kind: str) -> Path:
    return root() / "queries" / kind


def _named(kind: str, file_name: str) -> Path:
    """queries/<kind>/<file_name>, a query the code names; a knowledge base chosen by use_kb that lacks
    it (made before the query was added) uses the installed one's."""
    path = query_dir(kind) / file_name
    if not path.is_file() and _chosen is not None:
        return installed_root() / "queries" / kind / file_name
    return path


@cache
def query(kind: str, name: str) -> str:
    """The text of queries/<kind>/<name>.rq (read once per process; see _named)."""
    return _named(kind, f"{name}.rq").read_text(encoding="utf-8")


@cache
def update(kind: str, name: str) -> str:
    """The text of queries/<kind>/<name>.ru, a SPARQL 1.1 Update (read once per process; see _named)."""
    return _named(kind, f"{name}.ru").read_text(encoding="utf-8")


def rule_files(stage: str) -> tuple[Path, ...]:
    """Rule files of one stage (file names start with the stage), sorted by name."""
    return tuple(sorted(query_dir("rules").glob(f"{stage}-*.rq")))


def qc_files() -> tuple[Path, ...]:
    return tuple(sorted(query_dir("qc").glob("*-violation.rq")))


def input_check_files() -> tuple[Path, ...]:
    """The checks of native RDF input against the vocabulary (queries/input/<name>.rq), by name."""
    return tuple(sorted(query_dir("input").glob("*.rq")))


def all_turtle_files() -> tuple[Path, ...]:
    return tuple(sorted([*root().glob("ontology/*.ttl"), *root().glob("shapes/*.ttl")]))


def all_query_files() -> tuple[Path, ...]:
    return tuple(sorted(root().glob("queries/**/*.rq")))


def examples_dir() -> Path:
    return root() / "examples"


def cases_dir() -> Path:
    """The hand-written test cases (tests/cases: <id>.json|.ttl beside <id>.expected.json) of a source
    checkout; an installed wheel has none, so the folder may not exist."""
    return root() / "tests" / "cases"
