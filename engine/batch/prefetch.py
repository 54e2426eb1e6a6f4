"""Reading ahead: the next part is read and checked on a thread of its own while this one is evaluated.

On two cores a batch run has three stages — read (Parquet decoding, checks, conversion), evaluate, write —
and each spends most of its time in pyarrow or numpy loops that release the GIL, so running them on
separate threads overlaps them. ``ahead`` keeps at most ``depth`` finished items waiting, so memory holds a
bounded number of parts whatever the population's size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def ahead(items: Iterator[T], depth: int = 1, name: str = "jiuzhu-read-ahead") -> Iterator[T]:
    """The items of ``items``, in order, each produced on a background thread while the caller works on
    the one before. The producer starts an item only when fewer than ``depth`` are made and not yet taken,
    so with ``depth=1`` memory holds the item in the caller's hands and the one being made. An exception
    raised while producing is raised here, at the item where it happened (a population refused in its
    third part fails after the first two, as without reading ahead). Closing the returned iterator early
    stops the producer after the item it is on."""
    q: queue.SimpleQueue = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            it = iter(items)
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    q.put(_DONE)
                    return
                q.put(item)
                del item
        except BaseException as e:  # handed to the consumer, raised in its thread
            q.put(_Failed(e))

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            x = q.get()
            slots.release()  # taken: the producer may start the next one
            if x is _DONE:
                return
            if isinstance(x, _Failed):
                raise x.error
            yield x
            del x  # the caller's reference is the only one left: a finished part is freed at once
    finally:
        stop.set()
        worker.join()
