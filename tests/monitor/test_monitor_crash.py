"""Nothing lost: `jiuzhu serve` killed with SIGKILL mid-stream, restarted, and the sender retrying.

A client sends a synthetic stream of events one by one (each with an event_id) and
counts the acknowledgements. The whole service (server, workers, writer and monitor
processes) is killed with SIGKILL after some of them; it restarts on the same database
and the client sends again everything it had no answer for. Then every event is stored
exactly once, and the alerts are exactly those of the same stream applied without a
crash: the households' durable-rules sessions were rebuilt from the stored events, no
alert was lost and none was raised twice.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import orjson

from engine.monitor.events import parse_event
from engine.monitor.synth import generate

JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, data_dir: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET")}
        # a session of its own, so that the whole service can be killed at once
        self.proc = subprocess.Popen(
            [JIUZHU, "serve", "--port", str(self.port), "--workers", "2", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        )

    def admin_key(self) -> str | None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            m = re.search(r"JIUZHU_ADMIN_KEY=(jzk_\S+)", line)
            if m:
                return m.group(1)
            if "jiuzhu 服务" in line:
                return None
        raise AssertionError("service did not start")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert self.proc.poll() is None
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("service not ready")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)  # the service's own process group: server, workers, writer, monitor
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def _expected_alert_keys(lines: list[bytes]) -> set[str]:
    from engine.monitor.monitor import Monitor

    mon = Monitor()
    states: dict = {}
    keys: set[str] = set()
    for line in lines:
        ev = parse_event(orjson.loads(line))
        out = mon.process(ev, states.get(ev.household_id))
        states[ev.household_id] = out.state
        keys.update(a["key"] for a in out.alerts)
    return keys


def test_sigkill_mid_stream_loses_no_event_and_duplicates_no_alert(tmp_path):
    lines = list(generate(12, 240, seed=11))
    events = [orjson.loads(x) for x in lines]
    acked: list[int] = []

    def send(url: str, key: str, start: int, stop_after: int | None) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            for i in range(start, len(events)):
                try:
                    r = c.post("/v1/events", json=events[i])
                except httpx.TransportError:
                    return
                if r.status_code != 200:
                    return
                assert r.json()["status"] in ("recorded", "duplicate"), r.text
                acked.append(i)
                if stop_after is not None and len(acked) >= stop_after:
                    return

    first = Service(tmp_path)
    try:
        key = first.admin_key()
        first.wait_ready()
        # a sender in a thread; the service is killed while it is sending
        t = threading.Thread(target=send, args=(first.url, key, 0, None))
        t.start()
        while len(acked) < 90:
            time.sleep(0.01)
            assert t.is_alive() or len(acked) >= 90
        first.kill()
        t.join(30)
    finally:
        if first.proc.poll() is None:
            first.kill()
    sent_before = len(acked)
    assert 90 <= sent_before < len(events)

    second = Service(tmp_path)
    try:
        assert second.admin_key() is None  # same database: no new admin key
        second.wait_ready()
        send(second.url, key, sent_before, None)  # everything without an answer, the one in flight included
    finally:
        second.stop()

    assert acked[-1] == len(events) - 1
    with sqlite3.connect(tmp_path / "jiuzhu.sqlite3") as db:
        stored = [r[0] for r in db.execute("SELECT event_key FROM monitor_events")]
        alert_keys = [r[0] for r in db.execute("SELECT key FROM alerts")]
    assert sorted(stored) == sorted(e["event_id"] for e in events)  # each event once
    assert len(alert_keys) == len(set(alert_keys))
    assert set(alert_keys) == _expected_alert_keys(lines)  # none lost, none extra
