"""GET /metrics: Prometheus latency histograms by route template, the writer's batches, the simulation queue."""

from __future__ import annotations

import dataclasses
import re

import httpx
from fastapi.testclient import TestClient

from api.app import create_app
from api.core.examples import HOUSEHOLD
from tests.served import Served


def _count(text: str, route: str) -> float:
    m = re.search(rf'jiuzhu_http_request_duration_seconds_count\{{method="POST",route="{re.escape(route)}"\}} ([0-9.e+]+)', text)
    return float(m.group(1)) if m else 0.0


def test_two_evaluations_show_in_the_evaluate_histogram(client, keys):
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    before = _count(client.get("/metrics", headers=admin).text, "/v1/evaluate")
    for _ in range(2):
        r = client.post("/v1/evaluate", json=HOUSEHOLD, headers={"Authorization": f"Bearer {keys['window']}"})
        assert r.status_code == 200, r.text
    r = client.get("/metrics", headers=admin)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert _count(r.text, "/v1/evaluate") >= before + 2
    assert "jiuzhu_writer_batch_jobs_count" in r.text and "jiuzhu_writer_commit_seconds_bucket" in r.text
    assert "jiuzhu_simulation_queue_length 0.0" in r.text


def test_routes_are_labelled_by_template_not_by_path(client, keys):
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    client.get("/v1/determinations/no-such-id", headers=admin)
    text = client.get("/metrics", headers=admin).text
    assert 'route="/v1/determinations/{' in text and "no-such-id" not in text


def test_metrics_need_an_admin_key_unless_public(sqlite_settings, engine, keys, client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {keys['window']}"}).status_code == 403
    public = dataclasses.replace(sqlite_settings, metrics_public=True)
    with TestClient(create_app(public, rules=engine)) as other:
        assert other.get("/metrics").status_code == 200


def test_served_with_two_workers_the_metrics_add_up_across_processes(tmp_path):
    """`jiuzhu serve` runs several workers and a writer: multiprocess mode sums them in one scrape."""
    served = Served(tmp_path, workers=2)
    try:
        key = served.admin_key()
        served.wait_ready()
        h = {"Authorization": f"Bearer {key}"}
        for _ in range(4):  # several connections: the kernel spreads them over the workers
            with httpx.Client(base_url=served.url, headers=h, timeout=30) as c:
                assert c.post("/v1/evaluate", json=HOUSEHOLD).status_code == 200
        with httpx.Client(base_url=served.url, headers=h, timeout=30) as c:
            text = c.get("/metrics").text
        assert _count(text, "/v1/evaluate") >= 4, text
        m = re.search(r"jiuzhu_writer_batch_jobs_sum ([0-9.e+]+)", text)  # the writer process's own files
        assert m and float(m.group(1)) >= 4, text
        assert (tmp_path / "metrics").is_dir()
    finally:
        assert served.stop() == 0
