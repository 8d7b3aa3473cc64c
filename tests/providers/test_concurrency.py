"""Shared provider limits: rate and in-flight, Retry-After for every caller, raised or lowered from the environment."""

from __future__ import annotations

import threading
import time

import pytest

from outbound_pipeline import settings
from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.providers.concurrency import (
    ProviderLimit,
    RateLimiter,
    map_concurrently,
    map_following,
    map_handing_over,
    shared_limit,
)


def test_in_flight_limit_caps_calls_at_once_across_threads():
    limit = ProviderLimit(in_flight=2)
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def call(_i: int) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1

    map_concurrently(call, range(8), max_workers=8, limit=limit)
    assert state["max"] == 2


def test_retry_after_holds_every_caller_back_not_only_the_one_that_met_it():
    slept: list[float] = []
    limiter = RateLimiter(10.0, clock=lambda: 100.0, sleep=slept.append)
    assert limiter.acquire() == 100.0
    limiter.hold_off(5.0)  # a 429 with Retry-After: 5
    assert limiter.acquire() == 105.0 and limiter.acquire() == 105.1
    unlimited = RateLimiter(0.0, clock=lambda: 0.0, sleep=slept.append)
    unlimited.hold_off(2.0)
    assert unlimited.acquire() == 2.0  # a provider without a configured rate still honours Retry-After


def test_shared_limit_is_one_per_key_and_follows_changed_numbers():
    a = shared_limit("test-provider", 5.0, 3)
    assert shared_limit("test-provider", 5.0, 3) is a
    assert shared_limit("test-provider", 50.0, 3).per_second == 50.0  # a raised limit (a paid plan) replaces it


def test_rates_and_concurrency_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OUTBOUND_RATE_EMAIL", "10")
    monkeypatch.setenv("OUTBOUND_CONCURRENCY_SEND", "32")
    monkeypatch.setenv("OUTBOUND_IN_FLIGHT_TWILIO", "0")
    assert settings.provider_rate("email", 2.0) == 10.0 and settings.provider_rate("tavily", 0.0) == 0.0
    assert settings.stage_concurrency("send", 16) == 32 and settings.provider_in_flight("twilio", 100) == 0
    monkeypatch.setenv("OUTBOUND_RATE_EMAIL", "fast")
    with pytest.raises(ValueError, match="OUTBOUND_RATE_EMAIL"):
        settings.provider_rate("email", 2.0)


def test_a_paid_plans_rate_raises_resends_own_limiter(tmp_path):
    channels = ChannelService(resend_api_key="re_test_raise", email_per_second=10.0, unsubscribe_secret="s" * 40,
                              offline_ledger_dir=str(tmp_path))
    resend = channels.for_channel("email")
    assert resend._limiter.per_second == 10.0  # type: ignore[attr-defined]


def test_a_tavily_429_holds_the_shared_limit_back_for_every_caller(httpserver):
    from outbound_pipeline.providers.base import LeadProfile
    from outbound_pipeline.providers.research_tavily import TavilyResearch

    limited = {"detail": {"error": "rate limit"}}
    answer = {"query": "q", "results": [{"title": "t", "url": "https://news.example/a", "content": "Acme opened a hub.", "score": 0.9}]}
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(limited, status=429, headers={"Retry-After": "3"})
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(answer)
    limit = ProviderLimit(per_second=100.0)
    slept: list[float] = []
    tavily = TavilyResearch(api_key="tvly-test", base_url=httpserver.url_for(""), limit=limit, sleep=slept.append)
    lead = LeadProfile(lead_id="lead_a", first_name="Ana", last_name=None, company="Acme", role="COO", email="a@acme.example",
                       phone=None, country="US")
    before = time.monotonic()
    result = tavily.research(lead, "Book a call")
    assert len(result.snippets) == 1 and slept == [3.0]
    assert limit.rate._not_before >= before + 2.9  # the next caller on this limit waits too


def test_results_are_handed_over_as_they_come_and_returned_in_order():
    batches: list[list[int]] = []

    def slow_square(x: int) -> int:
        time.sleep(0.02)
        return x * x

    out = map_handing_over(slow_square, range(40), max_workers=4, hand_over=batches.append, every_s=0.05)
    assert out == [x * x for x in range(40)]
    assert len(batches) > 2  # handed over while the map ran, not only at its end
    assert sorted(v for batch in batches for v in batch) == out  # every result once


def test_a_failing_call_hands_over_what_completed_before_raising():
    kept: list[int] = []

    def fail_on_seven(x: int) -> int:
        if x == 7:
            time.sleep(0.05)  # the others complete first
            raise RuntimeError("provider down")
        return x

    with pytest.raises(RuntimeError, match="provider down"):
        map_handing_over(fail_on_seven, range(8), max_workers=8, hand_over=kept.extend, every_s=60)
    assert sorted(kept) == list(range(7))


class Upstream:
    """A stage before that stores `per_poll` new items at each poll until it has stored `total`, then says it is done."""

    def __init__(self, total: int, per_poll: int):
        self.total, self.per_poll, self.stored, self.polls = total, per_poll, 0, 0

    def poll(self) -> list[int]:
        self.polls += 1
        self.stored = min(self.total, self.stored + self.per_poll)
        return list(range(self.stored))  # everything stored so far, the items already taken included

    def done(self) -> bool:
        return self.stored >= self.total


def test_following_takes_each_item_once_as_the_stage_before_stores_it():
    upstream, batches = Upstream(total=30, per_poll=7), []
    calls: list[int] = []

    def call(x: int) -> int:
        calls.append(x)
        time.sleep(0.01)
        return -x

    taken = map_following(call, upstream.poll, key=lambda x: x, upstream_done=upstream.done, max_workers=4,
                          hand_over=batches.append, every_s=0.01, poll_every_s=0.03)
    assert taken == 30 and sorted(calls) == list(range(30))  # once each, though every poll repeats what was taken
    assert sorted(v for batch in batches for v in batch) == [-x for x in range(29, -1, -1)]
    assert len(batches) > 2 and upstream.polls >= 5  # taken up poll by poll, not at the end


def test_following_takes_what_the_stage_before_stored_as_it_finished():
    stored: list[int] = []
    finished = {"done": False}

    def poll() -> list[int]:
        if len(stored) < 3:
            stored.append(len(stored))
        elif not finished["done"]:
            stored.append(99)  # the last item lands in the same instant the stage before reports done
            finished["done"] = True
        return list(stored)

    kept: list[int] = []
    map_following(lambda x: x, poll, key=lambda x: x, upstream_done=lambda: finished["done"], max_workers=2,
                  hand_over=kept.extend, every_s=0.0, poll_every_s=0.01)
    assert sorted(kept) == [0, 1, 2, 99]


def test_following_stops_at_a_failing_call_after_handing_over_what_completed():
    upstream, kept = Upstream(total=10, per_poll=10), []

    def fail_on_nine(x: int) -> int:
        if x == 9:
            time.sleep(0.05)
            raise RuntimeError("provider down")
        return x

    with pytest.raises(RuntimeError, match="provider down"):
        map_following(fail_on_nine, upstream.poll, key=lambda x: x, upstream_done=upstream.done, max_workers=10,
                      hand_over=kept.extend, every_s=60, poll_every_s=0.2)
    assert sorted(kept) == list(range(9))


def test_callers_woken_late_together_go_out_spaced_not_in_a_burst():
    """A stall (a garbage collection, a busy CPU) wakes many callers past their slots at once: they go at most two
    together, then one slot apart, instead of all at once into the provider's 429s."""
    stalled = threading.Event()

    def oversleep(seconds: float) -> None:  # the first callers wake 0.2 s late, together
        time.sleep(seconds if stalled.is_set() else max(seconds, 0.2))

    limiter = RateLimiter(20.0, sleep=oversleep, spaced_at_wake=True)
    went: list[float] = []
    lock = threading.Lock()

    def call(_i: int) -> None:
        limiter.acquire()
        with lock:
            went.append(time.monotonic())

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    stalled.set()
    for thread in threads:
        thread.join()
    went.sort()
    assert all(c - a >= 0.045 for a, c in zip(went, went[2:], strict=False))  # never three within one slot (0.05 s)
