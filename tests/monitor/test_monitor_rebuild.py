"""A session rebuilt from stored events behaves exactly like one that stayed live.

After a restart, or when a household's session was dropped to bound memory, the
monitor replays the operations stored with each event. Property: over random
synthetic life histories, dropping the session before every event (so each event
meets a rebuilt session) raises exactly the same alerts as never dropping it, and
no alert key repeats.
"""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.monitor.events import parse_event
from engine.monitor.synth import _stream
from engine.schema.model import InputError


def _run(monitor, events, drop_each_time: bool) -> list[tuple[str, str]]:
    state, history, out = None, [], []
    for raw in events:
        ev = parse_event(raw)
        if drop_each_time:
            monitor.drop(ev.household_id)
        try:
            o = monitor.process(ev, state, lambda: list(history))
        except InputError:
            continue
        state = o.state
        history.append(o.ops)
        out.extend((a["key"], a["text"]) for a in o.alerts)
    monitor.drop(events[0]["household_id"])
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(2, 40))
def test_rebuilt_sessions_raise_the_same_alerts(monitor, seed, count):
    events = list(_stream(random.Random(seed), "H-PROP", count, dt.date(2021, 1, 1), dt.date(2023, 12, 31)))
    events.append({"household_id": "H-PROP", "type": "tick", "date": "2024-06-01"})
    live = _run(monitor, events, drop_each_time=False)
    rebuilt = _run(monitor, events, drop_each_time=True)
    assert rebuilt == live
    keys = [k for k, _t in live]
    assert len(keys) == len(set(keys))
