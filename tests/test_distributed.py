"""The same partitions on Dask distributed (a local multi-process cluster): identical decisions, in order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import case_files

from haip_kg import evaluate, inputs


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    yield cluster.scheduler_address
    cluster.close()


def test_dask_run_equals_single_process_run(scheduler: str) -> None:
    items = [i for path in case_files() for i in inputs.read_items(str(path))]
    single = [o.record for b in evaluate.evaluate(items, batch_size=7) for o in b.outcomes]
    on_dask = [
        o.record for b in evaluate.evaluate(items, batch_size=7, scheduler=scheduler) for o in b.outcomes
    ]
    assert len(on_dask) == len(items)
    assert on_dask == single


def test_local_worker_processes_equal_single_process_run() -> None:
    items = [i for path in case_files() for i in inputs.read_items(str(path))]
    single = [o.record for b in evaluate.evaluate(items, batch_size=5) for o in b.outcomes]
    parallel = [o.record for b in evaluate.evaluate(items, batch_size=5, workers=2) for o in b.outcomes]
    assert parallel == single
