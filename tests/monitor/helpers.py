"""Households and a small driver for the monitoring tests."""

from __future__ import annotations

import copy

from engine.monitor.events import parse_event
from engine.monitor.monitor import HouseholdState, Monitor

# 沈阳市和平区: one adult earning 1,400 a month (urban 低保 standard 672 in 2021).
WORKER = {
    "locality": "210102",
    "area": "urban",
    "members": [
        {"id": "p1", "relation": "head", "birth_date": "1980-03-01", "hukou_locality": "210102", "supporters": "able",
         "employed": True, "incomes": [{"type": "wage", "monthly": "1400.00"}]},
        {"id": "p2", "relation": "child", "birth_date": "2012-06-01", "hukou_locality": "210102", "supporters": "able",
         "schooling": "compulsory"},
    ],
    "assets": {"financial": "2000.00", "vehicles": [], "properties": 1},
}

# An orphan receiving 特困 who turns 18 on 2022-05-01, at high school.
ORPHAN = {
    "locality": "210102",
    "area": "urban",
    "members": [
        {"id": "c1", "relation": "head", "birth_date": "2004-05-01", "hukou_locality": "210102", "schooling": "high_school",
         "supporters": "none", "self_care": "full", "parents": [{"status": "deceased"}, {"status": "deceased"}],
         "current_benefits": ["tekun"]}
    ],
    "assets": {"financial": "0.00", "vehicles": [], "properties": 0},
}


def household(base: dict, **changes) -> dict:
    h = copy.deepcopy(base)
    h.update(changes)
    return h


class Driver:
    """Feeds events for one household into a monitor; keeps its state and every alert raised."""

    def __init__(self, monitor: Monitor, household_id: str = "T-1"):
        self.monitor = monitor
        self.hid = household_id
        self.state: HouseholdState | None = None
        self.alerts: list[dict] = []
        self.ops: list[list] = []
        self.n = 0

    def send(self, type_: str, date: str, **fields) -> list[dict]:
        self.n += 1
        ev = parse_event({"household_id": self.hid, "type": type_, "date": date, "event_id": f"{self.hid}-{self.n}", **fields})
        out = self.monitor.process(ev, self.state, lambda: list(self.ops))
        self.state = out.state
        self.ops.append(out.ops)
        self.alerts.extend(out.alerts)
        return out.alerts

    def register(self, date: str, record: dict) -> list[dict]:
        return self.send("register", date, household=record)


def rules_of(alerts: list[dict]) -> list[str]:
    return [a["rule"] for a in alerts]
