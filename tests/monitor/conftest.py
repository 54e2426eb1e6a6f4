from __future__ import annotations

import pytest

from engine.monitor.monitor import Monitor


@pytest.fixture(scope="session")
def monitor_engine():
    # one evaluator for every Monitor of the session (loading the rule book is the slow part)
    return Monitor().engine


@pytest.fixture
def monitor(monitor_engine):
    m = Monitor(engine=monitor_engine)
    yield m
    m.pool.clear()


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")
