"""Exactly once: a process killed in the middle of sending loses nothing and sends nothing twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

from outbound_pipeline.providers.channel_offline import OfflineChannel
from outbound_pipeline.runner import LAUNCH
from tests.conftest import MONDAY_MORNING, add_campaign

CRASHING_SENDER = textwrap.dedent("""
    import os, signal, sys
    from datetime import datetime
    from outbound_pipeline.engine.dispatch import dispatch
    from outbound_pipeline.providers.channel_offline import OfflineChannel
    from outbound_pipeline.store import warehouse
    from outbound_pipeline.store.campaigns import campaign_spec

    db, ledger, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class DiesMidSend(OfflineChannel):
        '''The provider accepts the message, then the process dies before the outbox learns of it.'''
        accepted = 0
        def send(self, message):
            result = super().send(message)
            DiesMidSend.accepted += 1
            if DiesMidSend.accepted >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

    channel = DiesMidSend(ledger)
    with warehouse.connect(db) as con:
        spec = campaign_spec(con, "demo_drip")
    dispatch(lambda: warehouse.connect(db), lambda ch: channel, lambda name: channel, spec, 1,
             datetime.fromisoformat(sys.argv[4]), max_concurrency=4)
    print("not killed")
""")


def _statuses(db) -> dict[str, int]:
    with db() as con:
        return dict(con.execute("SELECT status, count(*) FROM sends GROUP BY status").fetchall())


def test_killed_mid_send_then_rerun_sends_each_message_exactly_once(driver, instance, db, workdir):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "demo_drip.t1")
    queued = _statuses(db)["pending"]
    assert queued > 100

    ledger_dir = workdir / "offline_ledger"
    proc = subprocess.run([sys.executable, "-c", CRASHING_SENDER, str(workdir / "outbound.duckdb"), str(ledger_dir), "30",
                           MONDAY_MORNING.isoformat()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr  # SIGKILL, mid-chunk
    assert "not killed" not in proc.stdout
    after_crash = _statuses(db)
    assert after_crash.get("sending", 0) > 0  # the chunk in flight is left marked, never silently lost
    accepted_before_crash = OfflineChannel(ledger_dir).accepted_keys()
    assert len(accepted_before_crash) >= 30

    result = driver.run(["sends"], MONDAY_MORNING, "demo_drip.t1")
    metadata = result.asset_materializations_for_node("sends")[0].metadata
    assert metadata["reconciled_after_crash"].value == len(accepted_before_crash)

    final = _statuses(db)
    deferred = metadata["deferred_by_window"].value  # leads whose local sending window is closed at 09:00 UTC wait
    assert final.get("sending", 0) == 0 and final.get("pending", 0) == deferred
    assert final.get("sent", 0) + final.get("failed", 0) == queued - deferred
    keys = OfflineChannel(ledger_dir).accepted_keys()
    assert max(Counter(keys).values()) == 1  # no message reached the provider twice
    with db() as con:
        sent_ids = {r[0] for r in con.execute("SELECT send_id FROM sends WHERE status IN ('sent', 'failed')").fetchall()}
    assert set(keys) == sent_ids


def test_retrying_a_send_with_the_same_key_returns_the_original_answer(tmp_path):
    from outbound_pipeline.providers.base import OutboundMessage

    channel = OfflineChannel(tmp_path)
    message = OutboundMessage(send_id="snd_1", idempotency_key="snd_1", campaign_id="c", touch=1, lead_id="l", channel="sms",
                              to="+34600000000", body="hello")
    first = channel.send(message)
    again = OfflineChannel(tmp_path).send(message)  # a new process, same ledger
    assert again == first
    assert OfflineChannel(tmp_path).accepted_keys() == ["snd_1"]
