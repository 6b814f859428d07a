"""The only module that knows where the Turtle and query files live.

Two kinds of files:

- **The core** (guideline-independent, always the installed package's): ``ontology/core.ttl``,
  ``shapes/kb.shapes.ttl`` (the knowledge-base contract), the engine's, input checks', mapping's, QC and
  report queries (``queries/{engine,input,mapping,qc,report}/``) and the generic rules
  (``queries/generic/``: classify, status, qualify-met, explain-used-facts).
- **A knowledge base** (one consensus): its ``ontology/*.ttl`` (its domain modules, the generated
  ``statements.ttl`` and ``casesheet.ttl``), ``shapes/case.shapes.ttl``, its rules ``queries/rules/`` and
  their analysis ``queries/families.json``, its authoring source ``consensus/``, ``examples/`` and
  ``tests/cases``. The installed one is HAIP's; another is chosen for the process with `use_kb` (the
  command line's ``--kb PATH``).

In an installed wheel both are package data under ``haip_kg/data``; in a source checkout they are the
top-level folders.
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


CORE_QUERIES = ("engine", "input", "mapping", "qc", "report", "generic")
"""The query folders of the core: always the installed package's."""


def ontology_files() -> tuple[Path, ...]:
    """The core, the knowledge base's domain modules, its statements and its case-sheet mapping, in load
    order."""
    return (*tbox_files(), statements_file(), casesheet_file())


def tbox_file() -> Path:
    """The core module (guideline-independent terms): the installed package's."""
    return installed_root() / "ontology" / "core.ttl"


def tbox_files() -> tuple[Path, ...]:
    """The TBox: the core module, then the knowledge base's own domain modules (every ontology/*.ttl of the
    knowledge base but the core, the statements and the case-sheet mapping, by name)."""
    named = {"core.ttl", statements_file().name, casesheet_file().name}
    return (tbox_file(), *(p for p in sorted((root() / "ontology").glob("*.ttl")) if p.name not in named))


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
    """The knowledge-base contract: part of the core."""
    return installed_root() / "shapes" / "kb.shapes.ttl"


def query_dir(kind: str) -> Path:
    """queries/<kind>: the core's for CORE_QUERIES, else the knowledge base's (its rules)."""
    return (installed_root() if kind in CORE_QUERIES else root()) / "queries" / kind


def _named(kind: str, file_name: str) -> Path:
    return query_dir(kind) / file_name


@cache
def query(kind: str, name: str) -> str:
    """The text of queries/<kind>/<name>.rq (read once per process; see _named)."""
    return _named(kind, f"{name}.rq").read_text(encoding="utf-8")


@cache
def update(kind: str, name: str) -> str:
    """The text of queries/<kind>/<name>.ru, a SPARQL 1.1 Update (read once per process; see _named)."""
    return _named(kind, f"{name}.ru").read_text(encoding="utf-8")


def rule_files(stage: str) -> tuple[Path, ...]:
    """Rule files of one stage (file names start with the stage): the core's generic rules and the
    knowledge base's, sorted by file name. A knowledge-base rule named like a generic one (a knowledge base
    written before the core was split off) is left out: the core's is the engine's."""
    generic = {path.name: path for path in query_dir("generic").glob(f"{stage}-*.rq")}
    own = {path.name: path for path in query_dir("rules").glob(f"{stage}-*.rq") if path.name not in generic}
    return tuple(sorted([*generic.values(), *own.values()], key=lambda path: path.name))


def qc_files() -> tuple[Path, ...]:
    return tuple(sorted(query_dir("qc").glob("*-violation.rq")))


def input_check_files() -> tuple[Path, ...]:
    """The checks of native RDF input against the vocabulary (queries/input/<name>.rq), by name."""
    return tuple(sorted(query_dir("input").glob("*.rq")))


def all_turtle_files() -> tuple[Path, ...]:
    """Every Turtle file of the core and the knowledge base."""
    core = [tbox_file(), kb_shapes_file()]
    kb = [*root().glob("ontology/*.ttl"), *root().glob("shapes/*.ttl")]
    return tuple(sorted(set(core) | set(kb)))


def all_query_files() -> tuple[Path, ...]:
    """Every query file of the core and the knowledge base."""
    core = [p for kind in CORE_QUERIES for p in query_dir(kind).glob("*.rq")]
    return tuple(sorted(set(core) | set(root().glob("queries/rules/*.rq"))))


def examples_dir() -> Path:
    return root() / "examples"


def cases_dir() -> Path:
    """The hand-written test cases (tests/cases: <id>.json|.ttl beside <id>.expected.json) of a source
    checkout; an installed wheel has none, so the folder may not exist."""
    return root() / "tests" / "cases"
