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
    """At most `per_second` acquisitions per second, shared by threads (after an initial `burst`).

    Each caller reserves the next free slot under the lock, then sleeps until it outside the lock,
    so concurrent callers are spaced 1/`per_second` apart. `clock` and `sleep` can be replaced: a
    clock that stands still and a sleep that returns at once compute the schedule without waiting.
    """

    def __init__(self, per_second: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_second = per_second
        self.capacity = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._next = clock()  # the theoretical time of the next acquisition
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; returns the slot's time on `clock` (now, when there is no limit)."""
        if self.per_second <= 0:
            return self._clock()
        interval = 1.0 / self.per_second
        with self._lock:
            now = self._clock()
            due = max(self._next, now)
            slot = max(now, due - (self.capacity - 1) * interval)
            self._next = due + interval
        if slot > now:
            self._sleep(slot - now)
        return slot


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
