"""`jiuzhu monitor publish / consume / lag` with a real redis-server (JIUZHU_TEST_REDIS_URL, started by
.ci/redis.sh: a throwaway server, flushed here) and a real database (SQLite; PostgreSQL too when
JIUZHU_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from api.core.config import normalise_database_url
from engine.monitor.synth import generate

JIUZHU = str(Path(sys.executable).with_name("jiuzhu"))
REDIS_URL = os.environ.get("JIUZHU_TEST_REDIS_URL")
PG_URL = os.environ.get("JIUZHU_TEST_DATABASE_URL")

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="JIUZHU_TEST_REDIS_URL not set: no redis-server to test against (CI starts one, see .ci/redis.sh)")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_DATA_DIR", "JIUZHU_WRITER_SOCKET")}
    return {**env, "JIUZHU_REDIS_URL": REDIS_URL or "", **extra}


def _run(*args: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([JIUZHU, *args], capture_output=True, text=True, cwd=cwd, env=_env(**env), timeout=600)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    """Two empty databases: one for the streams, one for `jiuzhu monitor replay` of the same file."""
    if request.param == "sqlite":
        yield [("--data-dir", str(tmp_path / d)) for d in ("streams", "replay")], [
            f"sqlite:///{tmp_path / d / 'jiuzhu.sqlite3'}" for d in ("streams", "replay")]
        return
    if not PG_URL:
        pytest.skip("JIUZHU_TEST_DATABASE_URL not set (CI sets it; see .ci/run)")
    import psycopg

    base = normalise_database_url(PG_URL).replace("postgresql+psycopg://", "postgresql://")
    names = ["jiuzhu_test_" + uuid.uuid4().hex[:12] for _ in range(2)]
    head = base.rpartition("/")[0]
    with psycopg.connect(base, autocommit=True) as conn:
        for n in names:
            conn.execute(f'CREATE DATABASE "{n}"')
    try:
        urls = [f"{head}/{n}" for n in names]
        yield [("--database-url", u) for u in urls], [normalise_database_url(u) for u in urls]
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            for n in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def _contents(url: str) -> dict:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return {
                "events": sorted(c.execute(sa.text("SELECT household_id, event_key, seq, type, date, ops_json FROM monitor_events")).all()),
                "alerts": sorted(c.execute(sa.text("SELECT key, household_id, rule, level, text, status FROM alerts")).all()),
                "households": sorted(c.execute(sa.text("SELECT household_id, seq, record_json, summary_json, meta_json FROM monitor_households")).all()),
            }
    finally:
        eng.dispose()


def _unacked(r, consumer: str) -> tuple[int, int]:
    """(entries acknowledged by the group, entries pending with ``consumer``) over every partition."""
    n = int(r.get("jiuzhu:monitor:events:partitions"))
    acked = pending = 0
    for k in range(n):
        key = f"jiuzhu:monitor:events:{k}"
        g = next(x for x in r.xinfo_groups(key) if x["name"] == b"monitor")
        acked += (g["entries-read"] or 0) - g["pending"]  # not the stream's length: acknowledged entries are trimmed
        pending += sum(c["pending"] for c in r.xinfo_consumers(key, "monitor") if c["name"].decode() == consumer)
    return acked, pending


def test_a_consumer_killed_mid_way_loses_and_duplicates_nothing(tmp_path, redis_db, databases):
    opts, urls = databases
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(generate(200, 2000, seed=11)))

    pub = _run("monitor", "publish", str(events), "--partitions", "4", cwd=tmp_path)
    assert pub.returncode == 0, pub.stderr
    assert "发布 2000 个事件到 4 个分区" in pub.stdout
    lag = _run("monitor", "lag", cwd=tmp_path)
    assert lag.returncode == 0 and "合计积压 2000" in lag.stdout

    consume = [JIUZHU, "monitor", "consume", "--count", "10", "--claim-idle-ms", "3000", "--until-empty", *opts[0]]
    a = subprocess.Popen([*consume, "--consumer", "a"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    b = subprocess.Popen([*consume, "--consumer", "b"], cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while True:  # kill `a` mid-way: some events acknowledged, some read by `a` and not yet acknowledged
            acked, pending_a = _unacked(redis_db, "a")
            if acked >= 300 and pending_a > 0:
                break
            assert a.poll() is None, a.communicate()
            assert time.monotonic() < deadline, "the consumers made no progress"
            time.sleep(0.02)
        a.send_signal(signal.SIGKILL)
        a.wait()
        out, err = b.communicate(timeout=600)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert b.returncode == 0, err
    claimed = int(out.decode().split("接手 ")[1].split("；")[0])
    assert claimed > 0  # `b` took over what `a` had read and not acknowledged
    lag = _run("monitor", "lag", cwd=tmp_path)
    assert "合计积压 0" in lag.stdout

    rep = _run("monitor", "replay", str(events), "--workers", "1", *opts[1], cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    streamed, replayed = _contents(urls[0]), _contents(urls[1])
    keys = [(e[0], e[1]) for e in streamed["events"]]
    lost = len({(e[0], e[1]) for e in replayed["events"]} - set(keys))
    duplicated = len(keys) - len(set(keys))
    assert (lost, duplicated) == (0, 0)
    assert len(streamed["events"]) == len(replayed["events"]) > 0
    assert streamed["alerts"] == replayed["alerts"] and streamed["alerts"]
    assert streamed["households"] == replayed["households"] and len(streamed["households"]) == 200


def test_a_malformed_file_publishes_nothing(tmp_path, redis_db):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(generate(3, 10, seed=1)) + b'{"household_id": "X", "type": "income_change", "date": "2026-02-30"}\n')
    r = _run("monitor", "publish", str(events), cwd=tmp_path)
    assert r.returncode == 2 and "events.jsonl:11: date" in r.stderr
    assert not redis_db.keys("jiuzhu:monitor:*")


def test_the_publisher_waits_while_a_partition_is_over_its_bound(tmp_path, redis_db):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(generate(20, 400, seed=3)))
    pub = subprocess.Popen([JIUZHU, "monitor", "publish", str(events), "--partitions", "2", "--max-unacked", "50"],
                           cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        lengths = [0, 0]
        while max(lengths) < 50:
            assert pub.poll() is None, pub.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
            lengths = [redis_db.xlen(f"jiuzhu:monitor:events:{k}") for k in range(2)]
        # no consumer yet: the publisher waits at the bound (nothing is trimmed, nothing goes over it)
        assert pub.poll() is None
        assert max(redis_db.xlen(f"jiuzhu:monitor:events:{k}") for k in range(2)) == 50
        while pub.poll() is None:  # consumers drain the streams; the publisher goes on
            r = _run("monitor", "consume", "--until-empty", "--count", "20", "--data-dir", "d", cwd=tmp_path)
            assert r.returncode == 0, r.stderr
        out, err = pub.communicate()
    finally:
        if pub.poll() is None:
            pub.kill()
            pub.wait()
    assert pub.returncode == 0, err
    assert "发布 400 个事件" in out.decode() and "等待消费者 0 次" not in out.decode()
    r = _run("monitor", "consume", "--until-empty", "--data-dir", "d", cwd=tmp_path)
    assert r.returncode == 0 and "合计积压 0" in _run("monitor", "lag", cwd=tmp_path).stdout
    # every entry acknowledged, and trimmed: Redis keeps only what the consumers have not acknowledged
    assert sum(redis_db.xlen(f"jiuzhu:monitor:events:{k}") for k in range(2)) == 0
    assert sum(next(iter(redis_db.xinfo_groups(f"jiuzhu:monitor:events:{k}")))["entries-read"] for k in range(2)) == 400


def test_events_delivered_again_are_not_applied_twice(tmp_path, redis_db):
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(generate(10, 80, seed=5)))
    url = f"sqlite:///{tmp_path / 'd' / 'jiuzhu.sqlite3'}"
    assert _run("monitor", "publish", str(events), "--partitions", "2", cwd=tmp_path).returncode == 0
    first = _run("monitor", "consume", "--until-empty", "--data-dir", "d", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = _contents(url)
    # the same events again (a publisher that crashed and ran again): each answered as a duplicate
    assert _run("monitor", "publish", str(events), "--partitions", "2", cwd=tmp_path).returncode == 0
    again = _run("monitor", "consume", "--until-empty", "--data-dir", "d", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "记录 0，重复跳过 80" in again.stdout
    assert _contents(url) == before
