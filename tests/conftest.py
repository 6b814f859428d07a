"""Shared helpers: decide case sheets in one batch, and the files under tests/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from haip_kg import evaluate, inputs, resources

TESTS = Path(__file__).parent
CASES = TESTS / "cases"


@pytest.fixture(autouse=True)
def _forget_a_patched_knowledge_base(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A test that points resources.root at a copied knowledge base (and runs `haip-kg check` in this
    process) fills the per-process caches of the modules from the copy: forget them afterwards, so that no
    later test reads the copy's knowledge base. (Taken down before monkeypatch restores root.)"""
    original = resources.root
    yield
    if resources.root is not original:
        for name, module in list(sys.modules.items()):
            # not the parsed case shapes: findings name their blank nodes, which must stay the same ones
            if name.startswith("haip_kg") and name not in ("haip_kg.validate", "haip_kg.keyvalidation"):
                for value in list(vars(module).values()):
                    if (
                        callable(value)
                        and getattr(value, "__module__", "") == name
                        and hasattr(value, "cache_clear")
                    ):
                        value.cache_clear()


def decide_sheets(sheets: list[dict[str, Any]], source: str = "test") -> list[dict[str, Any]]:
    """Output records for case sheets, in order, decided together."""
    cases = list(inputs._from_sheets(source, sheets))
    return [outcome.record for batch in evaluate.evaluate(cases) for outcome in batch.outcomes]


def case_files() -> list[Path]:
    return sorted(
        p for p in CASES.iterdir() if p.suffix in (".json", ".ttl") and not p.name.endswith(".expected.json")
    )


@pytest.fixture(scope="session")
def decided_cases() -> dict[str, dict[str, Any]]:
    """Every case under tests/cases decided in one run (as the CLI would), by case id."""
    batches = evaluate.evaluate(c for path in case_files() for c in inputs.read(str(path)))
    return {o.record["patient"]: o.record for batch in batches for o in batch.outcomes}


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
