"""One channel's pacing never stalls another: email waiting on its rate holds no worker SMS needs."""

from __future__ import annotations

import threading
import time

from outbound_pipeline.domain.limits import OrgLimits
from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.providers.base import OutboundMessage, SendResult
from outbound_pipeline.runner import LAUNCH
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_spec
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import write_campaign


class Recorder:
    """A real (not simulated) provider noting when each channel's messages reached it."""

    name = "recorder"
    channels = ("email", "whatsapp", "sms")

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self.times.setdefault(message.channel, []).append(time.monotonic())
        return SendResult(send_id=message.send_id, status="sent", provider=self.name, provider_message_id=f"r_{message.send_id}")

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        return None


def test_sms_goes_out_while_email_waits_on_its_pacing(driver, instance, db, workdir):
    write_campaign(workdir, "lanes", type="drip", steps=[{"name": "intro", "intent": "introduce", "channels": ["email", "sms"]}])
    add_campaign(instance, "lanes")
    driver.run(LAUNCH, MONDAY_MORNING, "lanes")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "lanes.t1")
    with db() as con:
        spec = campaign_spec(con, "lanes")
        counts = dict(con.execute("SELECT channel, count(*) FROM sends WHERE campaign_id = 'lanes' GROUP BY channel").fetchall())
    assert counts.get("email", 0) >= 8 and counts.get("sms", 0) >= 8

    provider = Recorder()
    # Email at 4/s for 2 s of budget: 8 emails over about 1.75 s; SMS at 200/s: all at once.
    limits = OrgLimits(daily=None, whatsapp_tier=None, weekly_per_lead=None, per_second={"email": 4.0, "sms": 200.0}, dispatch_seconds=2)
    started = time.monotonic()
    stats = dispatch(lambda: warehouse.connect(workdir / "outbound.duckdb"), lambda ch: provider, lambda name: provider, spec, 1,
                     MONDAY_MORNING, max_concurrency=2, limits=limits)
    email_done = max(provider.times["email"]) - started
    sms_done = max(provider.times["sms"]) - started
    assert stats.by_channel["email"] == 8 and stats.by_channel["sms"] >= 8
    assert email_done >= 1.5
    assert sms_done < email_done / 2  # with shared workers, SMS would have waited behind the emails' pacing


class Checking(Recorder):
    """A provider that reads, at each call, whether the message was marked `sending` first (step 2 before step 3)."""

    def __init__(self, db_path) -> None:
        super().__init__()
        self.db_path = db_path
        self.unmarked: list[str] = []

    def send(self, message: OutboundMessage) -> SendResult:
        with warehouse.connect(self.db_path, read_only=True) as con:
            status = con.execute("SELECT status FROM sends WHERE send_id = ?", [message.send_id]).fetchall()[0][0]
        if status != "sending":
            self.unmarked.append(message.send_id)
        return super().send(message)


def test_a_dispatch_decides_and_marks_in_one_unit_and_lanes_done_together_record_in_one(driver, instance, db, workdir):
    """The file is opened once to read, decide and mark every channel's first chunk, and lanes whose results are ready
    together are written together: at most one more open per channel, however the lanes interleave."""
    write_campaign(workdir, "units", type="drip", steps=[{"name": "intro", "intent": "introduce", "channels": ["email", "whatsapp", "sms"]}])
    add_campaign(instance, "units")
    driver.run(LAUNCH, MONDAY_MORNING, "units")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "units.t1")
    with db() as con:
        spec = campaign_spec(con, "units")
        queued = con.execute("SELECT count(*), count(DISTINCT channel) FROM sends WHERE campaign_id = 'units'").fetchall()[0]
    provider = Checking(workdir / "outbound.duckdb")
    opens = 0

    def con_factory():
        nonlocal opens
        opens += 1
        return warehouse.connect(workdir / "outbound.duckdb")

    limits = OrgLimits(daily=None, whatsapp_tier=None, weekly_per_lead=None, per_second={}, dispatch_seconds=60)
    stats = dispatch(con_factory, lambda ch: provider, lambda name: provider, spec, 1, MONDAY_MORNING, max_concurrency=4, limits=limits)
    assert queued[1] >= 2 and stats.sent >= queued[1]
    assert provider.unmarked == []  # every message was marked `sending`, and committed, before its provider call
    assert 2 <= opens <= 1 + queued[1]
    with db() as con:
        left = con.execute("SELECT count(*) FROM sends WHERE campaign_id = 'units' AND status = 'sending'").fetchall()[0][0]
    assert left == 0
