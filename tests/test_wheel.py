"""Build the wheel and run the CLI from it, away from the source checkout: the Turtle, shape and query
files must ship inside the wheel and be found there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_contains_the_data_and_evaluates_the_examples(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("haip_kg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in (
        "haip_kg/data/ontology/haip.ttl",
        "haip_kg/data/ontology/core.ttl",
        "haip_kg/data/queries/generic/status-statement.rq",
        "haip_kg/data/consensus/kb.yaml",
        "haip_kg/schema/consensus.schema.json",
        "haip_kg/data/shapes/case.shapes.ttl",
        "haip_kg/data/queries/rules/verdict-patient.rq",
        "haip_kg/py.typed",
    ):
        assert required in names, f"{required} missing from the wheel"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    probe = subprocess.run(
        [sys.executable, "-c", "from haip_kg import resources; print(resources.root())"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert Path(probe.stdout.strip()) == site / "haip_kg" / "data"
    result = subprocess.run(
        [sys.executable, "-m", "haip_kg", "evaluate", str(site / "haip_kg" / "data" / "examples")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["verdict"] for r in records] == [
        "consider",
        "acceptable",
        "not-recommended",
        "option",
        "undetermined",
        "consider",
        "not-applicable",
    ]
