"""The streams as the HTTP service uses them: one Redis client per app (made on first use, with
timeouts, so that a Redis gone away answers an error instead of holding a request), and the lag per
partition that GET /metrics reads when scraped."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from api.streams import bus

log = logging.getLogger("jiuzhu.streams")
TIMEOUT_SECONDS = 10


def client(state) -> redis.Redis:
    r = getattr(state, "stream_redis", None)
    if r is None:
        r = state.stream_redis = redis.Redis.from_url(
            state.settings.redis_url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
        )
    return r


def stream_lag(state) -> Callable[[], list[tuple[int, int]] | None]:
    """Reads (partition, events not acknowledged by the configured group); None when Redis cannot say."""

    def read() -> list[tuple[int, int]] | None:
        try:
            return [(p.partition, p.unacked) for p in bus.lag(client(state), state.settings.stream_group)]
        except redis.RedisError as e:  # the scrape goes on without the gauge: the other metrics still count
            log.warning("stream lag unavailable: %s", e)
            return None

    return read
