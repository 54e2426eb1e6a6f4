from __future__ import annotations

import os

import pytest
import redis

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


@pytest.fixture
def redis_db():
    """The test Redis database (JIUZHU_TEST_REDIS_URL), empty before and after the test; the streams
    tests are skipped where it is not set."""
    r = redis.Redis.from_url(os.environ["JIUZHU_TEST_REDIS_URL"])
    r.flushdb()
    yield r
    r.flushdb()


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore:Using `httpx` with `starlette.testclient`")
