"""A send left in `sending` that the provider cannot answer for is neither recorded nor sent again."""

from __future__ import annotations

from collections import Counter

import pytest

from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.providers.base import OutboundMessage, ProviderError, SendResult
from outbound_pipeline.runner import LAUNCH
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_spec
from tests.conftest import MONDAY_MORNING, add_campaign


class HalfSure:
    """A provider that accepted some in-flight sends before the crash and cannot be asked about others."""

    name = "halfsure"
    channels = ("email", "whatsapp", "sms")

    def __init__(self, accepted: set[str], unreachable: set[str]):
        self.accepted = accepted
        self.unreachable = unreachable
        self.sent: Counter[str] = Counter()

    def send(self, message: OutboundMessage) -> SendResult:
        self.sent[message.send_id] += 1
        return SendResult(send_id=message.send_id, status="sent", provider=self.name, provider_message_id=f"hs_{message.send_id}")

    def reconcile(self, message: OutboundMessage) -> SendResult | None:
        if message.send_id in self.unreachable:
            raise ProviderError(self.name, "503", "list unavailable", 503)
        if message.send_id in self.accepted:
            return SendResult(send_id=message.send_id, status="sent", provider=self.name, provider_message_id=f"before_{message.send_id}")
        return None

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        try:
            return self.reconcile(message)
        except ProviderError:
            return None  # what `lookup` says when unsure: acting on it would send twice

    def poll_events(self, sends, until):  # pragma: no cover - not polled here
        raise NotImplementedError


@pytest.mark.slow  # about 90 s: the provider client waits out its retries on the failing list call
def test_unknown_in_flight_sends_stay_sending_and_are_not_sent_again(driver, instance, db, workdir):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "demo_drip.t1")
    with db() as con:
        # leads in Madrid: inside the sending window at 09:00 UTC, so nothing here is deferred
        ids = [r[0] for r in con.execute("SELECT s.send_id FROM sends s JOIN leads l USING (lead_id) WHERE s.touch = 1 AND s.status = 'pending' "
                                         "AND l.timezone = 'Europe/Madrid' ORDER BY s.send_id LIMIT 9").fetchall()]
    assert len(ids) == 9
        # A crash after marking: nine rows in flight with the provider named in them.
    with db() as con:
        con.execute(f"UPDATE sends SET status = 'sending', provider = 'halfsure', attempts = 1 WHERE send_id IN ({', '.join('?' * 9)})", ids)
        spec = campaign_spec(con, "demo_drip")
    accepted, unreachable, never = set(ids[:3]), set(ids[3:6]), set(ids[6:])
    provider = HalfSure(accepted, unreachable)
    path = workdir / "outbound.duckdb"

    stats = dispatch(lambda: warehouse.connect(path), lambda ch: provider, lambda name: provider, spec, 1, MONDAY_MORNING)

    assert stats.reconciled == 3
    assert sorted(u.split(":")[0] for u in stats.uncertain) == sorted(unreachable)
    assert not accepted & set(provider.sent) and not unreachable & set(provider.sent)  # neither re-sent
    assert all(provider.sent[s] == 1 for s in never)  # never accepted: sent now, once
    with db() as con:
        rows = dict(con.execute("SELECT send_id, status || ':' || coalesce(provider_message_id, '') FROM sends WHERE touch = 1").fetchall())
    assert {rows[s] for s in unreachable} == {"sending:"}
    assert {s: rows[s] for s in accepted} == {s: f"sent:before_{s}" for s in accepted}
    assert {s: rows[s] for s in never} == {s: f"sent:hs_{s}" for s in never}

    # Once the provider can answer again, the next run settles them without sending.
    provider.unreachable = set()
    provider.accepted |= unreachable
    again = dispatch(lambda: warehouse.connect(path), lambda ch: provider, lambda name: provider, spec, 1, MONDAY_MORNING)
    assert again.reconciled == 3 and again.uncertain == []
    assert max(provider.sent.values()) == 1 and not unreachable & set(provider.sent)
