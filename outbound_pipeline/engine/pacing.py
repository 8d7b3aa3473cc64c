"""Pacing inside a dispatch run: per channel messages per second, shared by every concurrent call.

Admission (`limits.py`) decides how many messages a run may send (rate x seconds between runs);
pacing spaces those sends out at the channel's rate while the run hands them to providers. Each
channel has one `RateLimiter` that every worker thread of the run waits on, so `max_concurrency`
threads never go faster than the rate together. A provider with its own pacing (Resend's requests
per second, Twilio's one SMS per second per sender number) keeps it: a send waits for the channel
slot, then for the provider's, so the effective rate is the smaller of the two.

Channels served by the offline simulation are scheduled on a clock that stands still: the schedule
is computed (and reported as `paced_seconds`) without anyone waiting, so demos and tests replaying
days of campaign stay fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from outbound_pipeline.providers.concurrency import RateLimiter


def _still() -> float:
    return 0.0


def _no_wait(_seconds: float) -> None:
    return None


class ChannelPacer:
    """One shared rate limiter per channel; `wait(channel)` before each provider call."""

    def __init__(self, rates: dict[str, float], simulated: Iterable[str] = (), clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        simulated = set(simulated)
        self.rates = dict(rates)
        self._limiters = {
            ch: RateLimiter(rate, clock=_still, sleep=_no_wait) if ch in simulated else RateLimiter(rate, clock=clock, sleep=sleep)
            for ch, rate in rates.items() if rate and rate > 0
        }
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, channel: str) -> None:
        """Block until the channel may send one more message (at once for a channel without a rate)."""
        limiter = self._limiters.get(channel)
        if limiter is None:
            return
        slot = limiter.acquire()
        with self._lock:
            self._first.setdefault(channel, slot)
            self._last[channel] = max(self._last.get(channel, slot), slot)

    def paced_seconds(self) -> dict[str, float]:
        """Per channel, the time from the first paced send to the last (simulated for offline channels)."""
        return {ch: round(self._last[ch] - self._first[ch], 3) for ch in self._first}
