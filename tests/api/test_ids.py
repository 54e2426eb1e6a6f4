"""Record ids: well-formed UUIDv7 (RFC 9562), ordered by creation time."""

from __future__ import annotations

import time
import uuid

from api.storage.ids import uuid7


def test_uuid7_is_a_canonical_version_7_uuid():
    for _ in range(2000):
        text = uuid7()
        u = uuid.UUID(text)
        assert str(u) == text  # canonical lower-case 8-4-4-4-12 form
        assert u.version == 7
        assert u.variant == uuid.RFC_4122


def test_uuid7_carries_the_creation_millisecond_and_sorts_by_it():
    before = time.time_ns() // 1_000_000
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    after = time.time_ns() // 1_000_000
    ms = uuid.UUID(first).int >> 80
    assert before <= ms <= after
    assert first < second


def test_uuid7_ids_are_unique():
    ids = [uuid7() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)
