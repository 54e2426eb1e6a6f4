"""What one request may cost everybody else: a large batch, a large events request, reform checks.

Starts `jiuzhu serve` (SQLite, 2 workers unless --workers) from this checkout or from
--source (another checkout, e.g. the code before a change: `git archive REV | tar -x -C DIR`),
and prints for each scenario what the large request cost and what single requests sent
meanwhile saw (each on a fresh connection, so they land on either worker):

  batch   one window-key batch of --households households of --members members (the issue's
          scenario: 1,000 x 50, a 15 MB body): status, answer size, its time, the service's peak
          RSS growth (every process of `jiuzhu serve`, sampled every 50 ms), and the latency of
          single POST /v1/evaluate meanwhile. --explain asks for every rule's reason.
  events  one POST /v1/events of --events registrations, while another client registers
          households one at a time: how many of those were answered before the large one, and
          their latency.
  reform  --policy-clients clients sending reform checks (a reform whose rule file has an error:
          the whole check runs, then 422) for --seconds, against single evaluations; the same
          evaluations without them first.

    .venv/bin/python benchmarks/bench_costs.py --scenario batch --households 200 --members 50
    .venv/bin/python benchmarks/bench_costs.py --source /tmp/before --scenario all
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HOUSEHOLD = json.loads((ROOT / "examples" / "liaoning_shenyang_family.json").read_text(encoding="utf-8"))
PAGE = os.sysconf("SC_PAGE_SIZE")


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and every process under it."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(d)] = int(fields[1])
        rss[int(d)] = int(fields[21]) * PAGE
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(c for c, pp in parents.items() if pp == p)
    return total


class Service:
    def __init__(self, source: Path, workers: int, env_extra: dict[str, str]):
        self.data = tempfile.mkdtemp(prefix="jiuzhu-bench-costs-")
        self.env = {
            k: v for k, v in os.environ.items() if k not in ("JIUZHU_WRITER_SOCKET", "JIUZHU_MONITOR_SOCKET", "DATABASE_URL")
        }
        self.env.update(env_extra)
        if source != ROOT:
            self.env["PYTHONPATH"] = str(source)
            self.env["JIUZHU_HOME"] = str(source)
        self.cmd = [sys.executable, "-c", "import sys; from engine.cli.main import main; sys.exit(main())"]
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers

    def key(self, role: str) -> str:
        out = subprocess.run(
            [*self.cmd, "keys", "create", "--role", role, "--name", f"压测{role}", "--data-dir", self.data],
            capture_output=True, text=True, env=self.env, check=True, cwd=self.data,
        )  # fmt: skip
        return out.stdout.strip()

    def __enter__(self) -> Service:
        self.proc = subprocess.Popen(
            [*self.cmd, "serve", "--port", str(self.port), "--workers", str(self.workers), "--data-dir", self.data],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env, cwd=self.data,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        seen: set = set()
        while len(seen) < self.workers:
            try:
                r = httpx.get(self.url + "/readyz", timeout=1)
                if r.status_code == 200:
                    seen.add(r.json().get("worker"))
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("service did not become ready")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(90)


class Singles(threading.Thread):
    """POST /v1/evaluate one at a time, each on a fresh connection, until stopped."""

    def __init__(self, url: str, key: str, pause: float = 0.05):
        super().__init__(daemon=True)
        self.url, self.key, self.pause = url, key, pause
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.perf_counter()
            try:
                r = httpx.post(
                    self.url + "/v1/evaluate", json=HOUSEHOLD, headers={"Authorization": f"Bearer {self.key}"}, timeout=120
                )
                ok = r.status_code == 200
            except httpx.TransportError:
                ok = False
            if ok:
                self.latencies.append((time.perf_counter() - t) * 1e3)
            else:
                self.errors += 1
            self.stop.wait(self.pause)

    def report(self, label: str) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"  {label}: no single evaluation answered ({self.errors} errors)"
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"  {label}: {len(lat)} single evaluations, p50 {statistics.median(lat):.0f} ms, p99 {p99:.0f} ms, "
            f"max {lat[-1]:.0f} ms, {self.errors} errors"
        )


def _big_household(i: int, members: int) -> dict:
    hh = copy.deepcopy(HOUSEHOLD)
    hh["household_id"] = f"BENCH-{i:05d}"
    child = {k: v for k, v in hh["members"][1].items() if k != "id_number"}
    hh["members"] = [hh["members"][0]] + [{**child, "id": f"m{j}"} for j in range(members - 1)]
    return hh


def batch(svc: Service, args) -> None:
    window = svc.key("window")
    body = json.dumps(
        {
            "households": [_big_household(i, args.members) for i in range(args.households)],
            **({"explain": True} if args.explain else {}),
        }
    ).encode()
    singles = Singles(svc.url, window)
    singles.start()
    time.sleep(1.0)
    base = _tree_rss(svc.proc.pid)
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(svc.proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    size = 0
    with httpx.stream("POST", svc.url + "/v1/evaluate/batch", content=body, timeout=3600,
                      headers={"Authorization": f"Bearer {window}", "Content-Type": "application/json"}) as r:  # fmt: skip
        for chunk in r.iter_bytes():
            size += len(chunk)
        status = r.status_code
    elapsed = time.perf_counter() - t
    time.sleep(0.5)
    done.set()
    sampler.join()
    singles.stop.set()
    singles.join()
    print(f"batch: {args.households} households x {args.members} members ({args.households * args.members:,} members), "
          f"body {len(body) / 1e6:.1f} MB, {'with explanations' if args.explain else 'default answer'}")  # fmt: skip
    print(f"  answer: HTTP {status}, {size / 1e6:.1f} MB in {elapsed:.1f} s")
    print(f"  service RSS: {base / 1e6:.0f} MB before, peak {peak / 1e6:.0f} MB (+{(peak - base) / 1e6:.0f} MB)")
    print(singles.report("meanwhile"))


def events(svc: Service, args) -> None:
    window, caseworker = svc.key("window"), svc.key("caseworker")
    reg = {
        "type": "register",
        "date": "2021-08-01",
        "household": {k: v for k, v in HOUSEHOLD.items() if k not in ("household_id", "as_of")},
    }
    body = {"events": [{**reg, "household_id": f"BIG-{i:05d}", "event_id": f"big-{i}"} for i in range(args.events)]}
    small: list[tuple[float, float]] = []  # (sent, answered) perf_counter
    big_done = threading.Event()
    stop = threading.Event()

    def one_by_one() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            t = time.perf_counter()
            r = httpx.post(svc.url + "/v1/events", json={**reg, "household_id": f"ONE-{n:05d}", "event_id": f"one-{n}"},
                           headers={"Authorization": f"Bearer {caseworker}"}, timeout=600)  # fmt: skip
            if r.status_code == 200:
                small.append((t, time.perf_counter()))
            stop.wait(0.05)

    th = threading.Thread(target=one_by_one, daemon=True)
    th.start()
    time.sleep(1.0)
    t = time.perf_counter()
    r = httpx.post(svc.url + "/v1/events", json=body, headers={"Authorization": f"Bearer {window}"}, timeout=3600)
    end = time.perf_counter()
    big_done.set()
    stop.set()
    th.join()
    during = [(a - s) * 1e3 for s, a in small if s >= t and a <= end]
    print(f"events: one request of {args.events} registrations, while another client registers households one at a time")
    print(
        f"  large request: HTTP {r.status_code}, {r.json().get('recorded') if r.status_code == 200 else r.text[:200]} recorded, {end - t:.1f} s"
    )
    if during:
        print(
            f"  single events answered while it ran: {len(during)}, p50 {statistics.median(during):.0f} ms, max {max(during):.0f} ms"
        )
    else:
        waited = [(a - s) * 1e3 for s, a in small if s < end and a > t]
        print(f"  single events answered while it ran: 0 (the one in flight waited {max(waited) if waited else 0:.0f} ms)")


def reform(svc: Service, args) -> None:
    window = svc.key("window")
    policies = [svc.key("policy") for _ in range(args.policy_clients)]
    bad_rule = "program: dibao_edge\nname: 低保边缘家庭\nrules:\n  - id: broken\n    when: no_such_fact > 1\n"
    body = {"population": "demo", "reform": {"name": "坏规则", "rules": {"dibao_edge.yaml": bad_rule}}}
    quiet = Singles(svc.url, window)
    quiet.start()
    time.sleep(args.seconds)
    quiet.stop.set()
    quiet.join()
    stop = threading.Event()
    counts = {"checks": 0, "codes": {}}

    def policy_client(key: str) -> None:
        with httpx.Client(base_url=svc.url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            while not stop.is_set():
                r = c.post("/v1/simulations", json=body)
                counts["checks"] += 1
                counts["codes"][r.status_code] = counts["codes"].get(r.status_code, 0) + 1

    clients = [threading.Thread(target=policy_client, args=(k,), daemon=True) for k in policies]
    for c in clients:
        c.start()
    busy = Singles(svc.url, window)
    busy.start()
    time.sleep(args.seconds)
    busy.stop.set()
    stop.set()
    busy.join()
    for c in clients:
        c.join()
    print(
        f"reform checks: {args.policy_clients} policy clients for {args.seconds} s: {counts['checks']} checks, answers {counts['codes']}"
    )
    print(quiet.report("without them"))
    print(busy.report("with them   "))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    ap.add_argument("--scenario", choices=("batch", "events", "reform", "all"), default="all")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--policy-clients", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    source = args.source.resolve()
    print(f"serving {source} with {args.workers} workers, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    pops = tempfile.mkdtemp(prefix="jiuzhu-bench-pop-")
    env = {"JIUZHU_POPULATIONS_DIR": pops}
    if args.scenario in ("reform", "all"):  # the reform checks need a population to name
        svc = Service(source, args.workers, env)
        subprocess.run([*svc.cmd, "synth", "--locality", "210000", "--households", "100", "--seed", "1", "--out", f"{pops}/demo"],
                       check=True, stdout=subprocess.DEVNULL, env=svc.env)  # fmt: skip
    for name, fn in (("batch", batch), ("events", events), ("reform", reform)):
        if args.scenario in (name, "all"):
            with Service(source, args.workers, env) as svc:
                fn(svc, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
