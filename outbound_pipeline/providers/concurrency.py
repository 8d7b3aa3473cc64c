"""Run provider calls concurrently, never faster than the provider allows.

A provider's limits are shared by every caller in the process: `shared_limit(key, ...)` returns one
`ProviderLimit` (requests per second and requests in flight) per provider or sender, so the research,
compose and send stages, and every worker thread in them, draw on the same budget. A 429 with
`Retry-After` holds the whole limit back (`hold_off`), not only the thread that met it.

Sends give each channel its own workers (`engine.dispatch`): a channel waiting on its pacing never
holds a worker another channel could use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class RateLimiter:
    """At most `per_second` acquisitions per second, shared by threads (after an initial `burst`).

    Each caller reserves the next free slot under the lock, then sleeps until it outside the lock,
    so concurrent callers are spaced 1/`per_second` apart. Callers that wake late together (the process
    stalled: a garbage collection, a busy CPU) are spaced again by when they really go, at most two at
    once, so a stall never sends a burst the provider answers with 429s (`spaced_at_wake`, on with the
    real clock). `clock` and `sleep` can be replaced: a clock that stands still and a sleep that returns
    at once compute the schedule without waiting.
    """

    def __init__(self, per_second: float, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, spaced_at_wake: bool | None = None):
        self.per_second = per_second
        self.capacity = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._next = clock()  # the theoretical time of the next acquisition
        self._not_before = float("-inf")  # no slot before this time (a provider's Retry-After)
        self._spaced_at_wake = clock is time.monotonic if spaced_at_wake is None else spaced_at_wake
        self._gone = float("-inf")  # the theoretical time of the next acquisition, by when callers really went
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a slot; returns the slot's time on `clock` (now, when there is no limit)."""
        with self._lock:
            now = self._clock()
            if self.per_second <= 0:
                slot = max(now, self._not_before)
            else:
                interval = 1.0 / self.per_second
                due = max(self._next, now, self._not_before)
                slot = max(now, self._not_before, due - (self.capacity - 1) * interval)
                self._next = due + interval
        if slot > now:
            self._sleep(slot - now)
        if self._spaced_at_wake and self.per_second > 0:
            self._space_out()
        return slot

    def _space_out(self) -> None:
        """Go now, unless callers that woke just before already used the rate: then wait for the next free moment."""
        interval = 1.0 / self.per_second
        with self._lock:
            woke = self._clock()
            go = max(woke, self._gone - max(1, self.capacity - 1) * interval)
            self._gone = max(self._gone, go) + interval
        if go > woke:
            self._sleep(go - woke)

    def hold_off(self, seconds: float) -> None:
        """The provider said to wait `seconds` (429 Retry-After): no caller gets a slot before then."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + max(0.0, seconds))


class ProviderLimit:
    """A provider's (or one sender's) limits: requests per second and requests in flight at once.

    `per_second <= 0` and `in_flight <= 0` mean no limit of that kind.
    """

    def __init__(self, per_second: float = 0.0, in_flight: int = 0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_second = per_second
        self.in_flight = in_flight
        self.rate = RateLimiter(per_second, clock=clock, sleep=sleep)
        self._slots = threading.BoundedSemaphore(in_flight) if in_flight > 0 else None

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Hold one request's place: a free in-flight slot first, then the next rate slot (its time is yielded)."""
        if self._slots is not None:
            self._slots.acquire()
        try:
            yield self.rate.acquire()
        finally:
            if self._slots is not None:
                self._slots.release()

    def hold_off(self, seconds: float) -> None:
        self.rate.hold_off(seconds)

    def wait(self) -> float:
        """A rate slot only (for calls whose in-flight limit is held elsewhere)."""
        return self.rate.acquire()


_SHARED: dict[str, ProviderLimit] = {}
_SHARED_LOCK = threading.Lock()


def shared_limit(key: str, per_second: float = 0.0, in_flight: int = 0) -> ProviderLimit:
    """The process-wide limit named `key` ("resend", "twilio", "twilio-sms:+1555..."), made on first use.

    Asking again with other numbers replaces it (a changed environment); the same numbers return the same limit.
    """
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None or (found.per_second, found.in_flight) != (per_second, in_flight):
            found = _SHARED[key] = ProviderLimit(per_second, in_flight)
        return found


def _paced(fn: Callable[[T], R], limiter: RateLimiter | None, limit: ProviderLimit | None) -> Callable[[T], R]:
    """`fn`, each call waiting for `limiter` and holding a slot of `limit` (either may be None)."""
    def paced(item: T) -> R:
        if limiter is not None:
            limiter.acquire()
        if limit is None:
            return fn(item)
        with limit.slot():
            return fn(item)

    return paced


class _Batches(Generic[R]):
    """Results gathered on the calling thread, handed to `hand_over` at most every `every_s` seconds and once at the end."""

    def __init__(self, hand_over: Callable[[list[R]], None], every_s: float):
        self._hand_over, self._every_s = hand_over, every_s
        self._batch: list[R] = []
        self._handed_at = time.monotonic()

    def add(self, results: Iterable[R]) -> None:
        self._batch.extend(results)
        if self._batch and time.monotonic() - self._handed_at >= self._every_s:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self._hand_over(self._batch)
            self._batch, self._handed_at = [], time.monotonic()


def map_concurrently(fn: Callable[[T], R], items: Iterable[T], max_workers: int, limiter: RateLimiter | None = None,
                     limit: ProviderLimit | None = None) -> list[R]:
    """`[fn(x) for x in items]` on up to `max_workers` threads, paced by `limiter` and/or `limit`; order kept."""
    items = list(items)
    if not items:
        return []
    paced = _paced(fn, limiter, limit)
    if max_workers <= 1 or len(items) == 1:
        return [paced(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(paced, items))


def map_handing_over(fn: Callable[[T], R], items: Iterable[T], max_workers: int, hand_over: Callable[[list[R]], None],
                     every_s: float = 0.5, limit: ProviderLimit | None = None) -> list[R]:
    """`map_concurrently`, handing the results to `hand_over` on the calling thread as they complete, at most every `every_s`
    seconds and once at the end: a long stage keeps its work as it goes, and the next stage can take it up meanwhile (within
    a fraction of a second, by default, so a stage that follows ends soon after this one).
    A failing call stops the map; what completed before it is handed over, then its error is raised."""
    items = list(items)
    if not items:
        return []
    paced = _paced(fn, None, limit)
    batches = _Batches(hand_over, every_s)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        futures = [pool.submit(paced, item) for item in items]
        try:
            for future in as_completed(futures):
                batches.add([future.result()])
        except BaseException:
            for future in futures:
                future.cancel()
            batches.flush()
            raise
        batches.flush()
        return [future.result() for future in futures]


def map_following(fn: Callable[[T], R], poll: Callable[[], list[T]], key: Callable[[T], Hashable], upstream_done: Callable[[], bool],
                  max_workers: int, hand_over: Callable[[list[R]], None], every_s: float = 0.5, poll_every_s: float = 0.5,
                  limit: ProviderLimit | None = None) -> int:
    """Call `fn` on every item `poll()` finds, as it finds them, until the stage before is done and nothing is left.

    `poll()` is asked every `poll_every_s` for the items ready now (it may repeat ones already taken: `key` tells them
    apart, each is called once); results go to `hand_over` on the calling thread at most every `every_s`. The map ends
    once `upstream_done()` was true before a poll that found nothing new and every call has returned: so an item the
    stage before stored just before finishing is still taken. A failing call hands over what completed, then raises.
    Returns how many items were called."""
    paced = _paced(fn, None, limit)
    taken: set[Hashable] = set()
    running: set[Future[R]] = set()
    batches = _Batches(hand_over, every_s)
    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        try:
            while True:
                finished_upstream = upstream_done()
                fresh = [item for item in poll() if key(item) not in taken]
                taken.update(key(item) for item in fresh)
                running.update(pool.submit(paced, item) for item in fresh)
                polled_at = time.monotonic()
                if finished_upstream and not fresh and not running:
                    break
                while True:  # collect what completes until the next poll is due
                    left = poll_every_s - (time.monotonic() - polled_at)
                    if left <= 0 or (finished_upstream and not running):
                        break
                    done, running = wait(running, timeout=left, return_when=FIRST_COMPLETED) if running else (set(), running)
                    if not done and not running:
                        time.sleep(max(0.0, left))
                    batches.add(future.result() for future in done)
        except BaseException:
            for future in running:
                future.cancel()
            batches.flush()
            raise
    batches.flush()
    return len(taken)
