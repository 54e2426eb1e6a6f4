"""The issue's scenario against a real `jiuzhu serve`: several clients send valid events while one
sends an event with an income of 2**64 - 1. The monitor process commits the events that arrived
together in one transaction; before, the poisoned event passed validation, failed inside
durable-rules and took its whole group with it (1,405 of 1,820 valid events answered 503). Now it
is refused (422) on its own, and every valid event is recorded: no 5xx, nothing lost.
"""

from __future__ import annotations

import contextlib
import copy
import sqlite3
import subprocess
import threading

import httpx
from helpers import WORKER
from served import Served

HOUSEHOLDS = 12
EVENTS_PER_HOUSEHOLD = 25
CLIENTS = 4
POISON_SENDS = 30
POISON = 18446744073709551615


def test_one_poisoned_event_fails_no_valid_event_of_other_clients(tmp_path):
    served = Served(tmp_path, workers=2)
    try:
        admin = served.admin_key(timeout=60)
        served.wait_ready(timeout=90)
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {admin}"}, timeout=60) as c:
            keys = [c.post("/v1/keys", json={"name": f"客户端{i}", "role": "window"}).json()["key"] for i in range(CLIENTS + 1)]
            for h in range(HOUSEHOLDS):
                reg = {"household_id": f"P-{h}", "type": "register", "date": "2021-08-01", "event_id": f"P-{h}-r",
                       "household": copy.deepcopy(WORKER)}
                assert c.post("/v1/events", json=reg).status_code == 200
        valid = [
            {"household_id": f"P-{h}", "type": "hospitalisation", "date": "2021-09-01", "member": "p1",
             "cost": f"{100 + n}.00", "event_id": f"P-{h}-{n}"}
            for n in range(EVENTS_PER_HOUSEHOLD)
            for h in range(HOUSEHOLDS)
        ]
        statuses: dict[str, int] = {}
        poison_statuses: list[int] = []

        def client(key: str, share: list[dict]) -> None:
            with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as cl:
                for i, ev in enumerate(share):
                    try:
                        statuses[ev["event_id"]] = cl.post("/v1/events", json=ev).status_code
                    except httpx.TransportError:  # no answer (the service hangs): this and the rest count as failed
                        statuses.update({e["event_id"]: 599 for e in share[i:]})
                        return

        def poisoner(key: str) -> None:
            with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as cl:
                for n in range(POISON_SENDS):
                    ev = {"household_id": f"P-{n % HOUSEHOLDS}", "type": "hospitalisation", "date": "2021-09-01",
                          "member": "p1", "cost": POISON, "event_id": f"poison-{n}"}
                    try:
                        poison_statuses.append(cl.post("/v1/events", json=ev).status_code)
                    except httpx.TransportError:
                        poison_statuses.append(599)
                        return

        threads = [threading.Thread(target=client, args=(keys[i], valid[i::CLIENTS])) for i in range(CLIENTS)]
        threads.append(threading.Thread(target=poisoner, args=(keys[CLIENTS],)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            served.stop(60)

    with sqlite3.connect(tmp_path / "jiuzhu.sqlite3") as db:
        stored = {r[0] for r in db.execute("SELECT event_key FROM monitor_events")}
    failed = sorted(k for k, s in statuses.items() if s >= 500)
    lost = sorted(ev["event_id"] for ev in valid if ev["event_id"] not in stored)
    print(f"valid events sent: {len(statuses)}, 5xx among them: {len(failed)}, valid events lost: {len(lost)}; "
          f"poisoned events sent: {len(poison_statuses)}, answered {sorted(set(poison_statuses))}")
    assert len(statuses) == len(valid)
    assert failed == []
    assert lost == []
    assert set(statuses.values()) == {200}
    assert poison_statuses == [422] * POISON_SENDS
    assert not any(k.startswith("poison-") for k in stored)
