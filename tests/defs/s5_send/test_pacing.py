"""Per channel messages per second pace the sends of a dispatch run, across its concurrent calls."""

from __future__ import annotations

import threading
import time

import pytest

from outbound_pipeline.domain.limits import OrgLimits, channel_rates
from outbound_pipeline.domain.loader import parse_campaign
from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.engine.pacing import ChannelPacer
from outbound_pipeline.providers.base import OutboundMessage, SendResult
from outbound_pipeline.providers.concurrency import RateLimiter, map_concurrently
from outbound_pipeline.runner import LAUNCH
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_spec
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import write_campaign

SPEC = parse_campaign("""
name: paced
goal: Book a call with operations leaders
type: drip
audience: {lead_list: a.csv}
limits: {per_second: {sms: 0.5}}
steps: [{name: intro, intent: introduce, channels: [sms]}]
""")


def test_rate_limiter_on_a_still_clock_schedules_slots_one_interval_apart_without_waiting():
    slept: list[float] = []
    limiter = RateLimiter(10.0, clock=lambda: 0.0, sleep=slept.append)
    assert [round(limiter.acquire(), 6) for _ in range(4)] == [0.0, 0.1, 0.2, 0.3]
    assert [round(s, 6) for s in slept] == [0.1, 0.2, 0.3]  # each caller would wait for its own slot
    burst = RateLimiter(2.0, burst=3, clock=lambda: 0.0, sleep=lambda _s: None)
    assert [burst.acquire() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]


def test_channel_rate_is_the_organisations_lowered_by_the_campaigns_and_shared_by_threads():
    limits = OrgLimits(per_second={"email": 2.0, "whatsapp": 10.0, "sms": 1.0})
    rates = channel_rates(SPEC, limits)
    assert rates == {"email": 2.0, "whatsapp": 10.0, "sms": 0.5}  # the campaign can only lower a rate
    assert channel_rates(SPEC, OrgLimits(per_second={"sms": 0.25}))["sms"] == 0.25

    pacer = ChannelPacer(rates, simulated={"email", "whatsapp", "sms"})
    started = time.monotonic()
    map_concurrently(lambda ch: pacer.wait(ch), ["sms"] * 11 + ["email"] * 5 + ["fax"], max_workers=8)
    assert time.monotonic() - started < 5  # simulated channels are scheduled, nobody waits through the 22 s of pacing
    assert pacer.paced_seconds() == {"sms": 20.0, "email": 2.0}  # 10 intervals at 0.5/s, 4 at 2/s; no rate, no pacing


class TimedChannel:
    """A real (not simulated) provider that notes when each message reached it; optionally with its own pacing."""

    name = "timed"
    channels = ("email", "whatsapp", "sms")

    def __init__(self, own_per_second: float | None = None):
        self.times: list[float] = []
        self.threads: set[int] = set()
        self._lock = threading.Lock()
        self._own = RateLimiter(own_per_second) if own_per_second else None

    def send(self, message: OutboundMessage) -> SendResult:
        if self._own:
            self._own.acquire()
        with self._lock:
            self.times.append(time.monotonic())
            self.threads.add(threading.get_ident())
        return SendResult(send_id=message.send_id, status="sent", provider=self.name, provider_message_id=f"t_{message.send_id}")

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        return None

    def span(self) -> float:
        return max(self.times) - min(self.times)


@pytest.fixture
def queued_sms(driver, instance, db, workdir):
    """A campaign whose first touch has SMS messages approved and waiting in the outbox."""
    write_campaign(workdir, "paced", type="drip", steps=[{"name": "intro", "intent": "introduce", "channels": ["sms"]}])
    add_campaign(instance, "paced")
    driver.run(LAUNCH, MONDAY_MORNING, "paced")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "paced.t1")
    with db() as con:
        spec = campaign_spec(con, "paced")
        # leads without a phone were drafted an email instead: keep them out of these measurements
        con.execute("UPDATE sends SET status = 'suppressed' WHERE campaign_id = 'paced' AND channel <> 'sms'")
        waiting = con.execute("SELECT count(*) FROM sends WHERE campaign_id = 'paced' AND channel = 'sms' AND status = 'pending'").fetchall()[0][0]
    assert waiting >= 24
    return spec


def _send(db_path, spec, provider, limits, pacer=None):
    return dispatch(lambda: warehouse.connect(db_path), lambda ch: provider, lambda name: provider, spec, 1, MONDAY_MORNING,
                    max_concurrency=8, limits=limits, pacer=pacer)


def test_dispatch_paces_concurrent_sends_at_the_channel_rate_and_the_slower_provider_rate_wins(queued_sms, workdir):
    db_path = workdir / "outbound.duckdb"
    no_other_limit = {"whatsapp_tier": None, "weekly_per_lead": None}
    # 8 SMS at 40/s over 8 threads: 7 intervals of 25 ms, about 0.175 s, however many threads call at once.
    fast = TimedChannel()
    started = time.monotonic()
    stats = _send(db_path, queued_sms, fast, OrgLimits(daily=8, per_second={"sms": 40.0}, **no_other_limit))
    elapsed = time.monotonic() - started
    assert stats.sent == 8 and len(fast.times) == 8 and len(fast.threads) > 1
    assert 0.16 <= fast.span() < 2 and elapsed < 5  # upper bounds generous: a loaded CI machine is slow, never fast
    assert 0.16 <= stats.paced_seconds["sms"] < 0.5

    # The provider's own pacing (20/s) is kept behind the channel's (40/s): the smaller rate wins, about 0.35 s.
    slow_provider = TimedChannel(own_per_second=20.0)
    stats = _send(db_path, queued_sms, slow_provider, OrgLimits(daily=16, per_second={"sms": 40.0}, **no_other_limit))
    assert stats.sent == 8 and 0.33 <= slow_provider.span() < 3

    # The campaign's own lower rate (20/s under the organisation's 200/s) paces too.
    lowered = queued_sms.model_copy(update={"limits": queued_sms.limits.model_copy(update={"per_second": {"sms": 20.0}})})
    slow_campaign = TimedChannel()
    stats = _send(db_path, lowered, slow_campaign, OrgLimits(daily=24, per_second={"sms": 200.0}, **no_other_limit))
    assert stats.sent == 8 and 0.33 <= slow_campaign.span() < 3


def test_dispatch_with_an_injected_clock_spaces_a_large_run_without_waiting(queued_sms, workdir):
    clock = {"now": 0.0}
    waits: list[float] = []
    pacer = ChannelPacer({"sms": 1.0}, clock=lambda: clock["now"], sleep=waits.append)
    provider = TimedChannel()
    started = time.monotonic()
    stats = _send(workdir / "outbound.duckdb", queued_sms, provider, OrgLimits(daily=24, per_second={"sms": 1.0}, whatsapp_tier=None,
                                                                                  weekly_per_lead=None), pacer=pacer)
    assert stats.sent == 24 and time.monotonic() - started < 10
    assert sorted(waits) == [float(i) for i in range(1, 24)]  # the i-th message waits i seconds: 24 messages at 1/s take 23 s
    assert stats.paced_seconds == {"sms": 23.0}


def test_sends_asset_reports_the_offline_channels_simulated_pacing(queued_sms, driver, monkeypatch):
    monkeypatch.setenv("OUTBOUND_RATE_SMS", "0.5")
    started = time.monotonic()
    result = driver.run(["sends"], MONDAY_MORNING, "paced.t1")
    metadata = result.asset_materializations_for_node("sends")[0].metadata
    handed_over = metadata["by_channel"].value["sms"]
    assert handed_over >= 24 and time.monotonic() - started < 10  # the offline simulation does not wait on the wall clock
    assert metadata["paced_seconds"].value == {"sms": (handed_over - 1) * 2.0}  # but its schedule is that of 0.5 SMS/s
