import pytest

from engine import default_engine


@pytest.fixture(scope="session")
def engine():
    return default_engine()
