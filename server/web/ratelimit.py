"""Per-key rate limit of event ingestion (`security.events_per_s`, `security.events_burst`).

A token bucket per key id, in each worker, counting events (a batch of 50 takes 50 tokens):
a whole request is admitted or refused, so a 429 stores nothing and the client retries the
batch after `Retry-After`. Each of N workers allows 1/N of the rate (SO_REUSEPORT spreads
connections evenly), so there is no Redis call on the hot path; several machines each enforce
their own share of what they are configured with.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from server.settings import Settings


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class EventLimiter:
    def __init__(self, rate_per_s: float | None, burst: float):
        self.rate, self.burst = rate_per_s, burst
        self.buckets: dict[str, _Bucket] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> EventLimiter:
        sec, workers = settings.security, settings.server.workers
        if sec.events_per_s is None:
            return cls(None, 0)
        burst = sec.events_burst or math.ceil(sec.events_per_s)
        # A whole batch must fit in one worker's bucket, or it could never be accepted.
        return cls(sec.events_per_s / workers, max(burst / workers, settings.server.max_batch_events))

    def take(self, key: str, n: int, now: float | None = None) -> float:
        """Take `n` tokens from `key`'s bucket: 0 when admitted, else the seconds to wait
        (nothing taken)."""
        if self.rate is None:
            return 0.0
        now = time.monotonic() if now is None else now
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= n:
            bucket.tokens -= n
            return 0.0
        return (n - bucket.tokens) / self.rate
