"""How long failed sign-ins lock a user name or a client address.

Four failures of one name are free (typos); from the fifth on, each failure locks the name for twice
as long as the one before: 30 s, 1 min, 2 min … up to 15 min. A client address gets twenty free
failures: a whole township office may reach the service through one address, and one person's typos
must not lock out the others (the name's lock already stops guessing at one account). Failures older than ``FORGET`` are forgotten,
so a person who mistypes now and then never accumulates a lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib

FREE_FAILURES = 4  # per user name
FREE_ADDRESS_FAILURES = 20  # per client address
FIRST_LOCK = dt.timedelta(seconds=30)
LONGEST_LOCK = dt.timedelta(minutes=15)
FORGET = dt.timedelta(hours=1)


def lock_after(failures: int, free: int = FREE_FAILURES) -> dt.timedelta:
    """The lock that the ``failures``-th recent failure earns (zero for the ``free`` ones)."""
    if failures <= free:
        return dt.timedelta(0)
    return min(FIRST_LOCK * 2 ** min(failures - free - 1, 10), LONGEST_LOCK)


def free_failures(subject: str) -> int:
    return FREE_ADDRESS_FAILURES if subject.startswith("addr:") else FREE_FAILURES


def name_subject(name: str) -> str:
    # Hashed: a failed sign-in is often a password typed into the name field.
    return "name:" + hashlib.sha256(name.strip().casefold().encode()).hexdigest()


def address_subject(address: str) -> str:
    return "addr:" + address[:70]
