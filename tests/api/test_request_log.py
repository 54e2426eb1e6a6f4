"""Request log lines: one JSON object per request with its id, caller, locality, route, status and
duration; never a key, a cookie or an unmasked resident ID number; the id echoed in X-Request-ID."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.keys import Role, Scope
from api.core import request_log
from api.core.config import Settings, SettingsError
from api.core.examples import HOUSEHOLD
from api.core.logformat import JsonFormatter, TextFormatter
from api.web.session import COOKIE, accounts

ID = "21010219560501123X"  # the example household's first member


@pytest.fixture
def lines(monkeypatch):
    """Every log line of the test, formatted as the service writes them with JIUZHU_LOG_FORMAT=json."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLogger("jiuzhu.access").level
    logging.getLogger("jiuzhu.access").setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        logging.getLogger("jiuzhu.access").setLevel(level)


@pytest.fixture
def app_client(sqlite_settings, engine):
    settings = dataclasses.replace(sqlite_settings, access_log=True, log_format="json")
    with TestClient(create_app(settings, rules=engine)) as c:
        yield c


def _requests(parsed: list[dict]) -> list[dict]:
    return [x for x in parsed if x["logger"] == "jiuzhu.access"]


def test_an_evaluation_writes_one_json_line_with_its_id_caller_and_the_households_locality(app_client, lines):
    key_row, key = app_client.app.state.repo.create_key("城关镇窗口", Role.WINDOW, Scope.of("210100"))
    r = app_client.post("/v1/evaluate", json=HOUSEHOLD, headers={"Authorization": f"Bearer {key}", "X-Request-ID": "lb-7f3a.01"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "lb-7f3a.01"
    [line] = _requests(lines())
    assert line["request_id"] == "lb-7f3a.01"
    assert line["key_id"] == key_row.id and "user_id" not in line
    assert line["locality"] == HOUSEHOLD["locality"]  # the household's, not the key's scope (210100)
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/evaluate", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")


def test_without_an_incoming_id_one_is_made_echoed_and_logged_and_routes_are_templates(app_client, lines):
    _, key = app_client.app.state.repo.create_key("经办", Role.CASEWORKER, Scope.of("210102"))
    r = app_client.get("/v1/determinations/no-such-id", headers={"X-API-Key": key})
    assert r.status_code == 404
    [line] = _requests(lines())
    assert line["request_id"] == r.headers["x-request-id"] and len(line["request_id"]) == 32
    assert line["route"].startswith("/v1/determinations/{") and "no-such-id" not in json.dumps(line)
    assert line["status"] == 404 and line["locality"] == "210102"  # no household: the caller's scope


def test_a_refused_request_is_logged_with_its_status_and_no_caller(app_client, lines):
    r = app_client.post("/v1/evaluate", json=HOUSEHOLD)
    assert r.status_code == 401
    [line] = _requests(lines())
    assert line["status"] == 401 and "key_id" not in line and line["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize("incoming", [ID, f"req-{ID}", "x" * 129, "bad id", "ä"])
def test_an_insane_or_id_number_bearing_request_id_is_replaced(incoming):
    made = request_log.request_id(incoming.encode("utf-8"))
    assert made != incoming and len(made) == 32


def test_no_key_cookie_or_id_number_reaches_any_log_line(app_client, lines):
    _, key = app_client.app.state.repo.create_key("窗口", Role.WINDOW)
    household = copy.deepcopy(HOUSEHOLD)
    household["members"][0]["name"] = f"张三{ID}"
    cookie = "s3cr3t-session-value-0123456789"
    sent = [
        app_client.post(
            "/v1/evaluate",
            json=household,
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": ID, "Cookie": f"jiuzhu_session={cookie}"},
        ),
        app_client.get(f"/v1/households/{ID}/determinations", headers={"Authorization": f"Bearer {key}x", "X-Request-ID": ID}),
        app_client.post("/v1/evaluate", content=b'{"id_number": "' + ID.encode() + b'"', headers={"X-API-Key": key}),
    ]
    assert [r.status_code for r in sent][1:] == [401, 422]
    text = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines())
    assert len(_requests(lines())) == 3
    assert ID not in text and ID.lower() not in text and ID[:17] not in text
    assert key not in text and key[4:20] not in text and cookie not in text
    assert all(ID not in r.headers["x-request-id"] for r in sent)


def test_text_lines_carry_the_same_fields(app_client):
    record = logging.LogRecord("jiuzhu.access", logging.INFO, __file__, 1, "GET /x 200 1.0ms", (), None)
    record.fields = {"request_id": "abc", "method": "GET", "route": "/x", "status": 200, "key_id": "k_1", "locality": "210102"}
    line = TextFormatter().format(record)
    assert line.endswith("GET /x 200 1.0ms request_id=abc key_id=k_1 locality=210102")


def test_the_log_format_setting_names_its_variable(monkeypatch):
    monkeypatch.setenv("JIUZHU_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError) as e:
        Settings.from_env()
    assert e.value.variable == "JIUZHU_LOG_FORMAT" and "json" in str(e.value)
    monkeypatch.setenv("JIUZHU_LOG_FORMAT", "json")
    monkeypatch.setenv("JIUZHU_ACCESS_LOG", "true")
    s = Settings.from_env()
    assert (s.log_format, s.access_log) == ("json", True)


def test_extra_fields_are_masked_in_both_formats():
    record = logging.LogRecord("jiuzhu.access", logging.INFO, __file__, 1, "x", (), None)
    record.fields = {"request_id": "abc", "note": f"户主{ID}"}
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert ID not in line and "210102********123X" in line


def test_a_signed_in_persons_request_names_the_user_not_a_key(app_client, lines):
    store = accounts(app_client.app)
    user = store.create_user("王五", Role.CASEWORKER, Scope.of("210102"), "correct-horse-42")
    app_client.cookies.set(COOKIE, store.open_session(user.id))
    assert app_client.get("/households", follow_redirects=False).status_code == 200
    [line] = _requests(lines())
    assert line["user_id"] == user.id and "key_id" not in line and line["locality"] == "210102"
    assert line["route"] == "/households" and line["status"] == 200
