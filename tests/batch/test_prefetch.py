"""Reading ahead (engine/batch/prefetch.py): the same items in the same order, a producer's error raised at
the item where it happened, and a consumer that stops early stops the producer."""

from __future__ import annotations

import threading
import time

import pytest

from engine.batch.prefetch import ahead


def test_items_come_in_order_and_each_on_the_producer_thread():
    seen = []

    def items():
        for i in range(50):
            seen.append(threading.current_thread().name)
            yield i

    assert list(ahead(items())) == list(range(50))
    assert set(seen) == {"jiuzhu-read-ahead"}


def test_an_error_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("第三部分有误")

    got = []
    with pytest.raises(ValueError, match="第三部分有误"):
        for x in ahead(items()):
            got.append(x)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    it = ahead(items(), depth=1)
    assert next(it) == 0
    it.close()  # joins the producer
    assert len(produced) <= 2  # the one taken and the one made after it
    assert not any(t.name == "jiuzhu-read-ahead" for t in threading.enumerate())


def test_at_most_one_item_is_made_ahead():
    """Memory holds the part being evaluated and the one being read, not a queue of parts."""
    made, taken = [], []

    def items():
        for i in range(20):
            made.append(i)
            yield i

    for x in ahead(items(), depth=1):
        time.sleep(0.01)  # the producer is faster than this consumer
        assert len(made) - len(taken) <= 2  # this one and the next
        taken.append(x)
    assert taken == list(range(20))
