"""The bundled worked examples (examples/, from ../shared/examples) decide as their expected outcomes say."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import decide_sheets, load

from haip_kg import resources

EXAMPLES = resources.examples_dir()
EXPECTED = load(EXAMPLES / "expected" / "expected.json")


@pytest.fixture(scope="module")
def decided() -> dict[str, dict[str, Any]]:
    return {r["patient"]: r for r in decide_sheets(load(EXAMPLES / "cases.json"), "examples/cases.json")}


@pytest.mark.parametrize("patient", sorted(EXPECTED))
def test_example(patient: str, decided: dict[str, dict[str, Any]]) -> None:
    expected = EXPECTED[patient]
    record = decided[patient]
    assert record["verdict"] == expected["verdict"]
    assert record["conditions"] == expected["conditions"]
    for name, statement in expected["statements"].items():
        got = record["statements"][name]
        assert got["status"] == statement["status"], name
        assert ("met" in got) == ("met" in statement), name
        assert got.get("met") == statement.get("met"), name
