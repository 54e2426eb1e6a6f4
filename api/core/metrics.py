"""Prometheus metrics (prometheus-client): request latency by route template, the writer's batches.

`jiuzhu serve` runs several processes (workers, the writer): it points PROMETHEUS_MULTIPROC_DIR at a
directory under the data directory before it starts them (``use_directory``), so each process's
metrics live in memory-mapped files there and any worker's ``/metrics`` reads them all
(prometheus-client's multiprocess mode). Without it (an embedded app, tests) they live in memory.
On the hot path the only work is one ``observe``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUEST_SECONDS = Histogram(
    "jiuzhu_http_request_duration_seconds",
    "HTTP request latency, by method and route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WRITER_BATCH_JOBS = Histogram(
    "jiuzhu_writer_batch_jobs",
    "requests committed in one group-commit transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
WRITER_COMMIT_SECONDS = Histogram(
    "jiuzhu_writer_commit_seconds",
    "time of one group-commit transaction",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def use_directory(data_dir: Path) -> Path:
    """Multiprocess mode for this process and the ones it starts afterwards: a fresh directory (files of
    an earlier run would add their counts to this one's). Call before any child process starts."""
    path = (data_dir / "metrics").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


class _Queue:
    """The simulation queue's length, read from the database when scraped (shared by every replica)."""

    def __init__(self, count: Callable[[], int]):
        self.count = count

    def collect(self):
        yield GaugeMetricFamily("jiuzhu_simulation_queue_length", "simulations queued, not yet running", value=self.count())


class _StreamLag:
    """Each monitoring stream partition's lag (events its consumer group has not acknowledged: unread
    plus pending), read from Redis when scraped; nothing when the streams cannot be read."""

    def __init__(self, read: Callable[[], list[tuple[int, int]] | None]):
        self.read = read

    def collect(self):
        rows = self.read()
        if rows is None:
            return
        g = GaugeMetricFamily("jiuzhu_monitor_stream_lag", "monitoring events not yet acknowledged by the consumer group, per stream partition", labels=["partition"])
        for k, n in rows:
            g.add_metric([str(k)], n)
        yield g


def render(queued: Callable[[], int], stream_lag: Callable[[], list[tuple[int, int]] | None] | None = None) -> tuple[bytes, str]:
    """The text exposition of every process's metrics, and its content type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        for collector in (REQUEST_SECONDS, WRITER_BATCH_JOBS, WRITER_COMMIT_SECONDS):
            registry.register(collector)
    registry.register(_Queue(queued))
    if stream_lag is not None:
        registry.register(_StreamLag(stream_lag))
    return generate_latest(registry), CONTENT_TYPE_LATEST


__all__ = ["REQUEST_SECONDS", "WRITER_BATCH_JOBS", "WRITER_COMMIT_SECONDS", "render", "use_directory"]
