"""`jiuzhu serve` as a real process on a loopback port: first start, answers, restart, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from served import Served

from api.core import examples


def test_serve_creates_an_admin_key_once_answers_and_keeps_records_across_restarts(tmp_path):
    first = Served(tmp_path)
    try:
        key = first.admin_key()
        first.wait_ready()
        h = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=first.url, headers=h, timeout=30) as c:
            answers = [c.post("/v1/evaluate", json=examples.HOUSEHOLD) for _ in range(20)]
            assert {r.status_code for r in answers} == {200}
            assert answers[0].json()["programs"][0]["program"] == "dibao"
            bad = c.post("/v1/evaluate", content=b'{"household_id": "x"}')
            assert bad.status_code == 422
            assert c.get("/v1/households/LN-2021-0001/determinations", params={"limit": 100}).json()["determinations"]
        assert (tmp_path / "jiuzhu.sqlite3").exists()
    finally:
        assert first.stop() == 0, first.output()

    second = Served(tmp_path, workers=1)
    try:
        second.wait_ready()
        with httpx.Client(base_url=second.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            hist = c.get("/v1/households/LN-2021-0001/determinations", params={"limit": 100}).json()["determinations"]
            assert {d["determination_id"] for d in hist} == {r.json()["determination_id"] for r in answers}
    finally:
        assert second.stop() == 0
    assert "JIUZHU_ADMIN_KEY" not in second.output()  # printed on the first start only


def test_a_writer_process_that_dies_is_restarted_and_workers_reconnect(tmp_path):
    server = Served(tmp_path, workers=1)
    try:
        key = server.admin_key()
        server.wait_ready()
        h = {"Authorization": f"Bearer {key}"}
        assert httpx.post(server.url + "/v1/evaluate", json=examples.HOUSEHOLD, headers=h, timeout=30).status_code == 200
        children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
        spawned = sorted(int(p) for p in children if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text())
        assert len(spawned) == 3  # the writer process, started first, the monitor process, and one worker
        os.kill(spawned[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        codes = []
        while time.monotonic() < deadline:
            r = httpx.post(server.url + "/v1/evaluate", json=examples.HOUSEHOLD, headers=h, timeout=30)
            codes.append(r.status_code)
            if r.status_code == 200 and len(codes) > 1:
                break
            assert r.status_code in (200, 503), r.text  # never a half-recorded answer
            time.sleep(0.3)
        assert codes[-1] == 200, codes
    finally:
        assert server.stop() == 0


def test_a_second_service_on_the_same_port_or_data_dir_is_refused_and_the_first_keeps_serving(tmp_path):
    first = Served(tmp_path / "a", workers=1)
    others: list[Served] = []
    try:
        key = first.admin_key()
        # the second service starts while the first is still starting, then once it answers
        early = Served(tmp_path / "b", workers=1, port=first.port, own_session=True)
        others.append(early)
        first.wait_ready()
        same_port = Served(tmp_path / "c", workers=1, port=first.port, own_session=True)
        others.append(same_port)
        for second in (early, same_port):
            assert second.exit_status() == 4, second.output()
            out = second.output()
            assert f"port {first.port} is already in use" in out and f"端口 {first.port} 已被占用" in out
            assert "JIUZHU_ADMIN_KEY" not in out  # refused before creating anything
        same_dir = Served(tmp_path / "a", workers=1, own_session=True)
        others.append(same_dir)
        assert same_dir.exit_status() == 4, same_dir.output()
        out = same_dir.output()
        assert f"in use by another jiuzhu serve (pid {first.proc.pid})" in out and "已被另一个 jiuzhu serve" in out
        # every new connection reaches the first service (a second one would answer 401 to its key)
        h = {"Authorization": f"Bearer {key}"}
        codes = {
            httpx.post(first.url + "/v1/evaluate", json=examples.HOUSEHOLD, headers=h, timeout=30).status_code for _ in range(20)
        }
        assert codes == {200}
    finally:
        for other in others:
            if other.proc.poll() is None:
                other.kill()
        assert first.stop() == 0, first.output()
