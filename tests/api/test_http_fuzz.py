"""Schemathesis over the OpenAPI document: whatever a client sends, no 5xx, and answers match the schema.

Hypothesis generates valid and invalid requests for every operation, with a key that
may do everything (admin), so that requests reach the handlers instead of stopping at 401.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from api.app import create_app
from api.auth.keys import Role
from api.core.config import Settings
from engine import default_engine

_data = Path(tempfile.mkdtemp(prefix="jiuzhu-fuzz-"))
app = create_app(Settings(data_dir=_data), rules=default_engine())
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def admin_key():
    from fastapi.testclient import TestClient

    with TestClient(app):  # runs the lifespan: rules, database, writer
        yield app.state.repo.create_key("fuzz", Role.ADMIN)[1]
    shutil.rmtree(_data, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case, admin_key):
    if case.path == "/v1/keys/{key_id}":  # revoking our own key would turn the rest into 401s
        case.path_parameters = {"key_id": "k_fuzz_absent"}
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_key}"}, checks=CHECKS)
