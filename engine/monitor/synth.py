"""A SYNTHETIC stream of monitoring events, for the replay benchmark and tests.

No real person or household is in it: ids start with ``SYN-``, and it is drawn
from assumptions, not statistics. Each household is registered, then lives
through a random sequence of events (incomes changing, jobs found and lost,
illnesses and hospitalisations, disasters, births, deaths, school, benefits
started and stopped, reviews); the households' streams are merged by date, as
a live feed would deliver them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Iterator

import orjson

# (locality, area, monthly 低保 standard used to draw incomes around it)
PLACES = [("210102", "urban", 700), ("620722", "rural", 370), ("500152", "rural", 550), ("350503", "urban", 750)]
WEIGHTS = {
    "income_change": 24,
    "hospitalisation": 12,
    "job_lost": 6,
    "job_found": 6,
    "illness_diagnosed": 3,
    "disaster": 3,
    "accident": 2,
    "disability_certified": 2,
    "school_enrolled": 3,
    "school_left": 2,
    "birth": 1,
    "death": 1,
    "member_moved_in": 1,
    "member_moved_out": 1,
    "benefit_started": 4,
    "benefit_stopped": 2,
    "review_completed": 4,
    "tick": 5,
}


def _household(rng: random.Random, hid: str, start: dt.date) -> dict:
    locality, area, standard = rng.choice(PLACES)
    n = rng.choice((1, 1, 2, 2, 3, 3, 3, 4, 4, 5))
    head_age = rng.randint(22, 85)
    members = []
    for i in range(n):
        if i == 0:
            age, rel = head_age, "head"
        elif i == 1 and head_age > 25 and rng.random() < 0.7:
            age, rel = max(18, head_age + rng.randint(-5, 5)), "spouse"
        else:
            age, rel = max(0, min(head_age - 20, rng.randint(0, 30))), "child"
        birth = start - dt.timedelta(days=int(age * 365.25) + rng.randint(0, 364))
        m = {"id": f"p{i + 1}", "relation": rel, "birth_date": birth.isoformat(), "hukou_locality": locality,
             "supporters": rng.choice(("able", "able", "able", "none", "unable"))}
        if 18 <= age < 60 and rng.random() < 0.6:
            m["employed"] = True
            m["incomes"] = [{"type": "wage", "monthly": f"{rng.randint(standard // 2, standard * 4)}.00"}]
        elif age >= 60 and rng.random() < 0.5:
            m["incomes"] = [{"type": "pension", "monthly": f"{rng.randint(100, standard * 2)}.00"}]
        if 6 <= age < 18:
            m["schooling"] = "compulsory" if age < 15 else rng.choice(("high_school", "vocational", "none"))
        if rng.random() < 0.05:
            m["disability"] = {"category": rng.choice(("limb", "visual", "intellectual")), "grade": rng.randint(1, 4)}
        members.append(m)
    benefits = rng.choice(([], [], [], ["dibao"]))
    rec = {"locality": locality, "area": area, "members": members,
           "assets": {"financial": f"{rng.randint(0, 30000)}.00", "properties": rng.choice((0, 1, 1, 1, 2))},
           "current_benefits": benefits}
    if benefits:
        rec["current_amounts"] = {"dibao": f"{rng.randint(100, standard * n)}.00"}
    return rec


def _stream(rng: random.Random, hid: str, count: int, start: dt.date, end: dt.date) -> Iterator[dict]:
    rec = _household(rng, hid, start)
    members = [m["id"] for m in rec["members"]]
    adults = [m["id"] for m in rec["members"] if m["relation"] != "child"] or members[:1]
    next_id = len(members) + 1
    day = start + dt.timedelta(days=rng.randint(0, 60))
    yield {"household_id": hid, "event_id": f"{hid}-0", "type": "register", "date": day.isoformat(), "household": rec}
    types, weights = zip(*WEIGHTS.items(), strict=True)
    span = max(1, (end - day).days)
    gap = max(1, span // max(1, count))
    for i in range(1, count):
        day = min(end, day + dt.timedelta(days=rng.randint(1, 2 * gap)))
        t = rng.choices(types, weights)[0]
        ev = {"household_id": hid, "event_id": f"{hid}-{i}", "type": t, "date": day.isoformat()}
        who = rng.choice(members)
        if t == "income_change":
            ev.update(member=who, income_type=rng.choice(("wage", "wage", "business", "pension", "transfer")),
                      monthly=f"{rng.choice((0, rng.randint(50, 4000)))}.00")
        elif t == "job_found":
            ev.update(member=rng.choice(adults), monthly=f"{rng.randint(800, 5000)}.00")
        elif t in ("job_lost", "school_left"):
            ev.update(member=rng.choice(adults) if t == "job_lost" else who)
        elif t == "illness_diagnosed":
            ev.update(member=who, cost=f"{rng.randint(1000, 80000)}.00")
        elif t == "hospitalisation":
            ev.update(member=who, cost=f"{rng.randint(500, 60000)}.00", days=rng.randint(1, 30))
        elif t in ("disaster", "accident"):
            ev.update(loss=f"{rng.randint(500, 80000)}.00")
            if t == "disaster":
                ev["cause"] = rng.choice(("fire", "flood", "natural_disaster"))
        elif t == "disability_certified":
            ev.update(member=who, category=rng.choice(("limb", "visual", "mental")), grade=rng.randint(1, 4))
        elif t == "school_enrolled":
            ev.update(member=who, schooling=rng.choice(("compulsory", "high_school", "vocational", "college")))
        elif t == "birth":
            new = f"p{next_id}"
            next_id += 1
            members.append(new)
            ev.update(member=new, sex=rng.choice(("male", "female")))
        elif t == "death" or t == "member_moved_out":
            if len(members) < 2:
                ev = {"household_id": hid, "event_id": ev["event_id"], "type": "review_completed", "date": ev["date"]}
            else:
                gone = rng.choice(members[1:])
                members.remove(gone)
                adults = [a for a in adults if a != gone] or members[:1]
                ev["member"] = gone
        elif t == "member_moved_in":
            new = f"p{next_id}"
            next_id += 1
            members.append(new)
            birth = day - dt.timedelta(days=rng.randint(20, 80) * 365)
            ev["member_record"] = {"id": new, "relation": "other", "birth_date": birth.isoformat(),
                                   "hukou_locality": rec["locality"], "supporters": "able"}
        elif t in ("benefit_started", "benefit_stopped"):
            ev["program"] = "dibao"
            if t == "benefit_started":
                ev["monthly"] = f"{rng.randint(100, 1500)}.00"
        yield ev


def generate(households: int, events: int, seed: int = 1, start: dt.date = dt.date(2021, 1, 1),
             end: dt.date = dt.date(2024, 12, 31)) -> Iterator[bytes]:
    """JSON lines (bytes, with newline): ``events`` events over ``households`` households, merged by date."""
    rng = random.Random(seed)
    per = [events // households + (1 if i < events % households else 0) for i in range(households)]
    streams = []
    for i, count in enumerate(per):
        if count:
            hid = f"SYN-MON-{i:07d}"
            streams.append(_stream(random.Random(rng.getrandbits(64)), hid, count, start, end))

    def keyed(k: int, it: Iterator[dict]) -> Iterator[tuple[str, int, dict]]:
        for ev in it:
            yield ev["date"], k, ev

    for _date, _k, ev in heapq.merge(*(keyed(k, s) for k, s in enumerate(streams))):
        yield orjson.dumps(ev) + b"\n"
