"""Run provider calls concurrently, never faster than the provider allows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class RateLimiter:
    """A token bucket shared by threads: at most `per_second` acquisitions per second."""

    def __init__(self, per_second: float, burst: int = 1, clock: Callable[[], float] = time.monotonic):
        self.per_second = per_second
        self.capacity = max(1, burst)
        self._tokens = float(self.capacity)
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.per_second <= 0:
            return
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.per_second)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.per_second
            time.sleep(wait)


def map_concurrently(fn: Callable[[T], R], items: Iterable[T], max_workers: int, limiter: RateLimiter | None = None) -> list[R]:
    """`[fn(x) for x in items]` on up to `max_workers` threads, paced by `limiter`; order kept."""
    items = list(items)
    if not items:
        return []

    def paced(item: T) -> R:
        if limiter is not None:
            limiter.acquire()
        return fn(item)

    if max_workers <= 1 or len(items) == 1:
        return [paced(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(paced, items))
