"""The input contract: every file in tests/shapes/valid/ conforms; each file in tests/shapes/invalid/ is
refused for the reason its name says (<key>--<reason>.json names the key that must be reported)."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph

from haip_kg import evaluate, inputs, validate

SHAPES = Path(__file__).parent / "shapes"
VALID = sorted((SHAPES / "valid").iterdir())
INVALID = sorted((SHAPES / "invalid").iterdir())


def _records(path: Path) -> list[dict]:
    return [o.record for b in evaluate.evaluate(inputs.read(str(path))) for o in b.outcomes]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_input_conforms(path: Path) -> None:
    records = _records(path)
    assert records, "no case read"
    for record in records:
        assert "errors" not in record, record.get("errors")
        assert record["validation"]["conforms"] is True
        assert [r for r in record["validation"]["results"] if r["severity"] == "violation"] == []


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_input_is_refused_for_its_reason(path: Path) -> None:
    key = path.stem.split("--")[0]
    (record,) = _records(path)
    assert "verdict" not in record
    assert record["source"] == str(path)
    reported = {e["key"] for e in record["errors"]}
    assert key in reported, f"expected an error on {key}, got {record['errors']}"
    for error in record["errors"]:
        assert error["message"].strip(), "every error needs a message"


def test_both_shacl_engines_report_the_same_findings() -> None:
    """pyshacl-turbo (the default, for speed) agrees with pySHACL (the reference) on every fixture."""
    cases = [c for path in [*VALID, *INVALID] for c in inputs.read(str(path)) if not c.errors]
    data = Graph()
    node_keys: dict = {}
    for case in cases:
        for triple in case.triples:
            data.add(triple)
        node_keys.update(case.node_keys)
    owner = validate.owner_index([(i, c.triples) for i, c in enumerate(cases)])
    turbo = validate.findings(data, owner, node_keys, engine="turbo")
    reference = validate.findings(data, owner, node_keys, engine="pyshacl")
    assert len(turbo) == len(INVALID)
    assert {i: set(f) for i, f in turbo.items()} == {i: set(f) for i, f in reference.items()}
