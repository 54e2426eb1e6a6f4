"""make cluster-demo: a provincial deployment on one machine, loaded, partly killed, and checked.

Everything on 127.0.0.1 in a temporary directory: PostgreSQL (initdb/pg_ctl from the distribution,
as the ``postgres`` user when run as root) and redis-server; ``jiuzhu db upgrade``; two ``jiuzhu serve``
replicas on two ports; two ``jiuzhu monitor consume`` consumers; a Dask scheduler with two workers.

The load, all at once: evaluations on both replicas (a window key each, every request with its own
Idempotency-Key and retried with it until answered); ``--events`` SYNTHETIC events over ``--households``
households published to the Redis streams (``jiuzhu monitor publish``); a simulation of a reform over a
``--population``-household population partitioned by county (``jiuzhu synth --partition-by county``,
``jiuzhu simulate --cluster``). Half-way through the events it SIGKILLs one replica, one consumer and one
Dask worker (each with its process group) and restarts them.

Then it reads the database and prints evaluations per second per replica, events per second end to
end, the simulation's time, and last ``lost N, duplicated M``: acknowledged determinations missing or
recorded twice, published events missing or applied twice, alerts raised twice. Exit 1 unless both
are 0. Everything is stopped and the directory removed at the end, on an error and on Ctrl-C.

    python benchmarks/cluster_demo.py [--households 20000 --events 200000 --population 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import redis
import sqlalchemy as sa

from api.core.config import normalise_database_url
from api.streams import bus

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JIUZHU = str(BIN / "jiuzhu")
DASK = str(BIN / "dask")
HOUSEHOLD = orjson.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_bytes())
REFORM = ROOT / "examples" / "reforms" / "dibao_plus5_edge2.yaml"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The children, each in a process group of its own (a replica's workers, writer and monitor, a Dask
    worker's nanny and worker die with it), logged to files in the directory."""

    def __init__(self, logs: Path, env: dict):
        self.logs, self.env = logs, env
        self.procs: dict[str, subprocess.Popen] = {}
        self.args: dict[str, list[str]] = {}
        logs.mkdir()

    def start(self, name: str, args: list[str], **env) -> subprocess.Popen:
        self.args[name] = args
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the child holds it; closed when it ends)
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**self.env, **env}, start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def kill(self, name: str) -> None:
        p = self.procs[name]
        _signal(p, signal.SIGKILL)
        p.wait()

    def restart(self, name: str) -> subprocess.Popen:
        return self.start(name, self.args[name])

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                _signal(p, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(p, signal.SIGKILL)
                p.wait()


def _signal(p: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(p.pid, sig)


class Postgres:
    """A throwaway server from the distribution's binaries (as .ci/postgres.sh starts one)."""

    def __init__(self, root: Path):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
        if not bins:
            raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bin = bins[-1].parent
        self.dir = root / "pg"
        self.dir.mkdir()
        self.port = free_port()
        self.as_pg: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            shutil.chown(self.dir, "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self.started = False

    def start(self) -> str:
        run = lambda *a: subprocess.run([*self.as_pg, *a], check=True, capture_output=True)  # noqa: E731
        run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c max_connections=200 -c fsync=on"
        run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-t", "60", "-o", opts, "start")
        self.started = True
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        if self.started:
            subprocess.run([*self.as_pg, str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop"],
                           capture_output=True)


@dataclass
class Client:
    """Evaluations against one replica: each request under its own Idempotency-Key, retried with it
    (the replica may be dead, or restarting) until answered, so that a request is recorded once."""

    port: int
    key: str
    name: str
    stop: threading.Event
    acked: set[str] = field(default_factory=set)
    retries: int = 0
    unanswered: int = 0

    def run(self) -> None:
        body = orjson.dumps(HOUSEHOLD)
        conn: http.client.HTTPConnection | None = None
        n = 0
        while not self.stop.is_set():
            n += 1
            idem = f"demo-{self.name}-{n}"
            deadline = None
            while True:
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    conn.request("POST", "/v1/evaluate", body, {"Authorization": f"Bearer {self.key}", "Idempotency-Key": idem,
                                                                "Content-Type": "application/json"})
                    resp = conn.getresponse()
                    data = resp.read()
                    if resp.status == 200:
                        self.acked.add(orjson.loads(data)["determination_id"])
                        break
                    raise OSError(f"HTTP {resp.status}: {data[:200]!r}")
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                        conn = None
                    self.retries += 1
                    deadline = deadline or time.monotonic() + 120
                    if time.monotonic() > deadline:
                        self.unanswered += 1
                        break
                    time.sleep(0.2)
        if conn is not None:
            conn.close()


def wait_ready(port: int, proc_alive, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise RuntimeError(f"the replica on port {port} exited")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the replica on port {port} was not ready in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--households", type=int, default=20_000, help="households of the event stream")
    ap.add_argument("--events", type=int, default=200_000, help="events published")
    ap.add_argument("--population", type=int, default=1_000_000, help="households of the simulated population (0: no simulation)")
    ap.add_argument("--partitions", type=int, default=8, help="stream partitions")
    ap.add_argument("--max-unacked", type=int, default=5_000, help="publisher's bound per partition")
    ap.add_argument("--serve-workers", type=int, default=1, help="worker processes per replica")
    ap.add_argument("--clients", type=int, default=2, help="evaluating clients per replica")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) at the end")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background (SIGINT ignored)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix="jiuzhu-cluster-"))
    tmp.chmod(0o755)  # the postgres user reaches its directory inside
    pg = Postgres(tmp)
    procs = Processes(tmp / "logs", {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JIUZHU_DATA_DIR", "PROMETHEUS_MULTIPROC_DIR")})
    stop = threading.Event()
    try:
        return run(args, tmp, pg, procs, stop)
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C does not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        stop.set()
        procs.stop_all()
        pg.stop()
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp: Path, pg: Postgres, procs: Processes, stop: threading.Event) -> int:
    say(f"temporary directory {tmp}")
    url = pg.start()
    say(f"PostgreSQL on 127.0.0.1:{pg.port}")
    redis_port = free_port()
    (tmp / "redis").mkdir()
    procs.start("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", str(tmp / "redis"),
                          "--save", "", "--appendonly", "no"])
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    r = redis.Redis.from_url(redis_url)
    for _ in range(100):
        try:
            r.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    say(f"Redis on 127.0.0.1:{redis_port}")
    procs.env.update({"DATABASE_URL": url, "JIUZHU_REDIS_URL": redis_url})

    up = subprocess.run([JIUZHU, "db", "upgrade", "--database-url", url], capture_output=True, text=True, cwd=ROOT, env=procs.env)
    if up.returncode:
        raise RuntimeError(f"jiuzhu db upgrade failed: {up.stderr}")
    say("jiuzhu db upgrade: done")
    keys = []
    for i in range(2):
        out = subprocess.run([JIUZHU, "keys", "create", "--role", "window", "--name", f"replica{i}", "--database-url", url],
                             capture_output=True, text=True, cwd=ROOT, env=procs.env, check=True).stdout
        keys.append(out.splitlines()[0].strip())  # the key, shown once, on its own line

    # data, made before the clock starts
    events_file = tmp / "events.jsonl"
    subprocess.run([JIUZHU, "monitor", "synth", "--households", str(args.households), "--events", str(args.events), "--seed", "1",
                    "--out", str(events_file)], check=True, capture_output=True, cwd=ROOT)
    # Dask is one of jiuzhu's dependencies: a missing `dask` command is a broken install, not a reason to skip
    simulate = dask = args.population > 0
    population = tmp / "population"
    if simulate:
        t = time.perf_counter()
        subprocess.run([JIUZHU, "synth", "--locality", "210000", "--households", str(args.population), "--seed", "1",
                        "--partition-by", "county", "--out", str(population)], check=True, capture_output=True, cwd=ROOT)
        say(f"population of {args.population:,} households, partitioned by county, in {time.perf_counter() - t:.1f} s")

    # the cluster
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        procs.start(f"replica{i}", [JIUZHU, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.serve_workers),
                                    "--data-dir", str(tmp / f"replica{i}"), "--database-url", url])
    bus.layout(r, args.partitions)
    bus.ensure_groups(r, "monitor", args.partitions)
    for i in range(2):
        procs.start(f"consumer{i}", [JIUZHU, "monitor", "consume", "--group", "monitor", "--consumer", f"consumer{i}",
                                     "--claim-idle-ms", "3000", "--data-dir", str(tmp / f"consumer{i}"), "--database-url", url])
    scheduler = free_port()
    if dask:
        procs.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(scheduler), "--no-dashboard"])
        for i in range(2):
            procs.start(f"dask{i}", [DASK, "worker", f"tcp://127.0.0.1:{scheduler}", "--host", "127.0.0.1", "--nworkers", "1",
                                     "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"])
    for i, port in enumerate(ports):
        wait_ready(port, lambda i=i: procs.alive(f"replica{i}"))
    say(f"replicas on ports {ports[0]} and {ports[1]}; 2 consumers; " + (f"Dask scheduler on {scheduler} with 2 workers" if dask else "no Dask"))

    # the load
    clients = [Client(ports[i], keys[i], f"r{i}c{j}", stop) for i in range(2) for j in range(args.clients)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    t_load = time.perf_counter()
    for th in threads:
        th.start()
    sim: dict = {}
    if simulate:
        def simulation() -> None:
            t = time.perf_counter()
            p = subprocess.run([JIUZHU, "simulate", str(population), "--reform", str(REFORM), "--out", str(tmp / "simulation"),
                                "--cluster", f"tcp://127.0.0.1:{scheduler}"], capture_output=True, text=True, cwd=ROOT)
            sim.update(seconds=time.perf_counter() - t, rc=p.returncode, err=p.stderr[-2000:])

        sim_thread = threading.Thread(target=simulation, daemon=True)
        sim_thread.start()
    t_events = time.perf_counter()
    procs.start("publisher", [JIUZHU, "monitor", "publish", str(events_file), "--partitions", str(args.partitions),
                              "--max-unacked", str(args.max_unacked)])

    engine = sa.create_engine(normalise_database_url(url))
    killed = False
    deadline = time.monotonic() + max(600, args.events / 20)
    while True:
        n = _scalar(engine, "SELECT count(*) FROM monitor_events")
        lagging = sum(p.unacked for p in bus.lag(r, "monitor"))
        if not killed and n >= args.events // 2:
            say(f"{n:,} events committed: SIGKILL replica0, consumer0" + (", Dask worker w0" if dask else ""))
            victims = ["replica0", "consumer0", *(["dask0"] if dask else [])]
            for v in victims:
                procs.kill(v)
            time.sleep(1)
            for v in victims:
                procs.restart(v)
            restarted = threading.Thread(target=wait_ready, args=(ports[0], lambda: procs.alive("replica0")), daemon=True)
            restarted.start()  # the events go on meanwhile (a replica takes a while to load its rules)
            say("restarted them")
            killed = True
        publisher_done = procs.procs["publisher"].poll() is not None
        if publisher_done and procs.procs["publisher"].returncode != 0:
            raise RuntimeError(f"publisher failed:\n{procs.tail('publisher')}")
        if publisher_done and lagging == 0:
            break
        for c in ("consumer0", "consumer1"):
            if not procs.alive(c):
                raise RuntimeError(f"{c} exited:\n{procs.tail(c)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"events not consumed in time: {n:,} committed, lag {lagging:,}")
        time.sleep(0.25)
    t_events_done = time.perf_counter()
    if not killed:  # fewer events than a half-way check could see: kill now
        say("SIGKILL replica0, consumer0 (late)")
        for v in ("replica0", "consumer0"):
            procs.kill(v)
            procs.restart(v)
        wait_ready(ports[0], lambda: procs.alive("replica0"))
    else:
        restarted.join()
    say(f"replica0 ready again; events done in {t_events_done - t_events:.1f} s")
    if dask and not (procs.alive("dask0") and procs.alive("dask1") and procs.alive("scheduler")):
        raise RuntimeError(f"the Dask cluster did not survive:\n{procs.tail('dask0')}\n{procs.tail('scheduler')}")
    if simulate:
        sim_thread.join()
        if sim.get("rc"):
            raise RuntimeError(f"simulation failed: {sim.get('err')}")
    stop.set()
    for th in threads:
        th.join(180)
    t_load_done = time.perf_counter()

    # the check, from the database
    events_s = args.events / (t_events_done - t_events)
    load_s = t_load_done - t_load
    lost = duplicated = 0
    with engine.connect() as c:
        for i in range(2):
            mine = [cl for cl in clients if cl.port == ports[i]]
            acked = set().union(*(cl.acked for cl in mine))
            key_id = c.execute(sa.text("SELECT id FROM api_keys WHERE name = :n"), {"n": f"replica{i}"}).scalar()
            rows = c.execute(sa.text("SELECT id FROM determinations WHERE caller_key_id = :k"), {"k": key_id}).scalars().all()
            missing = len(acked - set(rows))
            extra = len(rows) - len(set(rows) & acked)
            unanswered = sum(cl.unanswered for cl in mine)
            lost += missing + unanswered
            duplicated += extra
            say(f"replica{i}: {len(acked):,} evaluations acknowledged in {load_s:.1f} s = {len(acked) / load_s:,.1f} evaluations/s "
                f"({sum(cl.retries for cl in mine)} retries; missing {missing}, recorded twice {extra}, unanswered {unanswered})")
        stored = {(h, k) for h, k in c.execute(sa.text("SELECT household_id, event_key FROM monitor_events"))}
        n_rows = _scalar(engine, "SELECT count(*) FROM monitor_events")
        seq_gaps = _scalar(engine, "SELECT count(*) FROM (SELECT household_id FROM monitor_events GROUP BY household_id "
                                   "HAVING max(seq) <> count(*)) t")
        alerts_twice = _scalar(engine, "SELECT count(*) - count(DISTINCT key) FROM alerts")
        alerts = _scalar(engine, "SELECT count(*) FROM alerts")
    sent = set()
    with open(events_file, "rb") as f:
        for line in f:
            ev = orjson.loads(line)
            sent.add((ev["household_id"], ev["event_id"]))
    events_missing = len(sent - stored)
    events_twice = n_rows - len(stored) + seq_gaps
    lost += events_missing
    duplicated += events_twice + alerts_twice
    say(f"events: {args.events:,} published over {args.households:,} households, all committed in {t_events_done - t_events:.1f} s = "
        f"{events_s:,.0f} events/s end to end (missing {events_missing}, applied twice {events_twice}); "
        f"{alerts:,} alerts (duplicated {alerts_twice})")
    if simulate:
        say(f"simulation: {args.population:,} households on the Dask cluster in {sim['seconds']:.1f} s")
    engine.dispose()
    print(f"lost {lost}, duplicated {duplicated}", flush=True)
    return 0 if lost == duplicated == 0 else 1


def _scalar(engine, sql: str):
    with engine.connect() as c:
        return c.execute(sa.text(sql)).scalar()


if __name__ == "__main__":
    sys.exit(main())
