import os

import pytest

from engine import default_engine


@pytest.fixture(scope="session")
def engine():
    return default_engine()


@pytest.fixture(scope="session")
def dask_scheduler():
    """The address of a 2-worker Dask cluster: the one CI starts (``.ci/dask.sh`` exports
    ``JIUZHU_TEST_DASK_SCHEDULER``), or else a ``LocalCluster`` of processes started for this session."""
    address = os.environ.get("JIUZHU_TEST_DASK_SCHEDULER")
    if address:
        yield address
        return
    from distributed import LocalCluster  # heavy: loaded only by the tests that fan out

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as local:
        yield local.scheduler_address
