"""The realistic benchmark cohort (benchmarks/make_cohort.py --realistic): deterministic for a seed,
one-decimal measurements, and exactly the cases it breaks on purpose are refused by the input contract."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import decide_sheets

CONTINUOUS = (
    "largest_liver_met_cm",
    "liver_involvement_pct",
    "disease_free_interval_months",
    "months_since_liver_resection",
    "systemic_lines[].months_since_end",
    "bilirubin_total.value",
    "ast.value",
    "alt.value",
    "alp.value",
    "albumin.value",
    "platelets.value",
    "anc.value",
    "creatinine.value",
    "cea.value",
)


def _load_generator() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "make_cohort.py"
    spec = importlib.util.spec_from_file_location("make_cohort", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_cohort = _load_generator()


@pytest.fixture(scope="module")
def valid_sheets() -> list[dict[str, Any]]:
    """The sheets of a 2,000-case realistic cohort that were not broken on purpose."""
    broken = _defects(2000, 3)
    return [sheet for sheet in make_cohort.cohort(2000, 3, realistic=True) if sheet["id"] not in broken]


def _defects(n: int, seed: int) -> dict[str, str]:
    """Case id -> name of the defect, for the cases the generator broke on purpose."""
    rng = random.Random(seed)
    return {
        sheet["id"]: defect
        for sheet, defect in (make_cohort.realistic_case(rng, i) for i in range(n))
        if defect
    }


def test_same_seed_same_cohort() -> None:
    first = make_cohort.cohort(500, 7, realistic=True)
    assert first == make_cohort.cohort(500, 7, realistic=True)
    assert first != make_cohort.cohort(500, 8, realistic=True)


def test_broken_share_is_the_documented_one() -> None:
    share = len(_defects(10000, 2014)) / 10000
    assert make_cohort.INVALID_SHARE == 0.03
    assert abs(share - make_cohort.INVALID_SHARE) < 0.005, share


def test_exactly_the_broken_cases_are_refused() -> None:
    sheets = make_cohort.cohort(300, 2014, realistic=True)
    refused = {record["patient"] for record in decide_sheets(sheets) if "errors" in record}
    broken = _defects(300, 2014)
    assert len(broken) >= 5
    assert refused == set(broken)


def _values(sheets: list[dict[str, Any]], key: str) -> list[Any]:
    found = []
    for sheet in sheets:
        name, _, field = key.partition(".")
        if name.endswith("[]"):
            found += [item[field] for item in sheet.get(name[:-2], []) if field in item]
        elif name in sheet:
            found.append(sheet[name][field] if field else sheet[name])
    return found


@pytest.mark.parametrize("key", CONTINUOUS)
def test_continuous_values_have_one_decimal(valid_sheets: list[dict[str, Any]], key: str) -> None:
    values = _values(valid_sheets, key)
    assert len(values) > 100
    assert all(isinstance(v, float) and round(v, 1) == v for v in values)
    assert sum(v != int(v) for v in values) > len(values) / 2, "most values should have a decimal"
    assert len(set(values)) > 20


def test_valid_ages_are_whole_years(valid_sheets: list[dict[str, Any]]) -> None:
    ages = [sheet["age"] for sheet in valid_sheets if "age" in sheet]
    assert ages and all(isinstance(age, int) and 18 <= age <= 100 for age in ages)


@pytest.mark.parametrize("defect", [name for name, _ in make_cohort.DEFECTS])
def test_each_defect_is_refused(valid_sheets: list[dict[str, Any]], defect: str) -> None:
    """Every kind of defect, put into a valid sheet, is refused (the 300-case cohort has only some)."""
    sheet = json.loads(json.dumps(valid_sheets[0]))
    dict(make_cohort.DEFECTS)[defect](random.Random(1), sheet)
    (record,) = decide_sheets([sheet])
    assert "errors" in record, sheet
