"""Which of a consumer's batch of events are stored already, in one query per batch.

The monitor asks, for every event with an id, whether that id is stored for its household (a duplicate
is answered, not applied): one query each, about 2.6 ms of a consumer's 4.5 ms per event on
PostgreSQL (profiled, 10,000 events). A stream batch is hundreds of events, nearly all new, so the
consumer asks once for the whole batch and hands the monitor a repository that answers "not stored"
from that set and asks the database only for the ids it holds. The set is taken just before the batch
is applied; an id stored meanwhile by another writer (POST /v1/events) is caught by the unique key when
the batch commits, and the batch is applied again, the set taken again.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, tuple_

from api.monitoring.repo import MonitorRepository
from api.storage.models import MonitorEventRecord

_EV = MonitorEventRecord.__table__
CHUNK = 500  # pairs per query (bound parameters stay well under SQLite's and PostgreSQL's limits)


def stored_keys(repo: MonitorRepository, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of ``pairs`` (household_id, event_key) stored already."""
    todo = sorted(set(pairs))
    found: set[tuple[str, str]] = set()
    with repo.engine.connect() as c:
        for i in range(0, len(todo), CHUNK):
            q = select(_EV.c.household_id, _EV.c.event_key).where(
                tuple_(_EV.c.household_id, _EV.c.event_key).in_(todo[i : i + CHUNK])
            )
            found.update((h, k) for h, k in c.execute(q))
    return found


class KnownEvents:
    """``repo``, except that ``event_by_key`` answers None without a query for the ids not in ``stored``."""

    def __init__(self, repo: MonitorRepository, stored: set[tuple[str, str]]):
        self._repo = repo
        self._stored = stored

    def __getattr__(self, name: str):
        return getattr(self._repo, name)

    def event_by_key(self, household_id: str, key: str, conn=None):
        if (household_id, key) not in self._stored:
            return None
        return self._repo.event_by_key(household_id, key, conn)
