"""What a batch makes happen: attribution windows, email threading, bounce-rate pause, reply modes, the 24-hour window."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from outbound_pipeline.defs.partitions import open_touch
from outbound_pipeline.domain.touches import REPLY_TOUCH, touch_key
from outbound_pipeline.engine.landed import polled_records
from outbound_pipeline.store import landing
from tests.conftest import add_campaign
from tests.defs.s6_track.helpers import ANA, BEN, CLEO, ingest_landed, later, seed_campaign, seed_leads, seed_sends, send_row


def _reply(reply_id: str, channel: str, sender: str, body: str, at, provider: str = "twilio", refs: list[str] | None = None) -> dict:
    return {"reply_id": reply_id, "send_id": None, "campaign_id": None, "touch": None, "lead_id": None, "channel": channel,
            "from_address": sender, "body": body, "intent": "unknown", "received_at": at, "provider": provider,
            "thread_refs": json.dumps(refs) if refs is not None else None}


def _land(rows: list[dict]) -> None:
    for record in polled_records(pd.DataFrame(rows)):
        landing.append(record)


def _rows(db, sql: str) -> list[tuple]:
    with db() as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def seeded(workdir, db, instance):
    def make(**spec_changes):
        add_campaign(instance, "demo_drip")
        with db() as con:
            seed_campaign(con, workdir, **spec_changes)
            seed_leads(con)
            seed_sends(con, [
                send_row("snd_ana_wa", ANA, "whatsapp", provider_message_id="SMana"),
                send_row("snd_ben_sms", BEN, "sms", provider_message_id="SMben"),
                send_row("snd_cleo_mail", CLEO, "email", provider="resend", message_id="<snd_cleo_mail@routewise.example>"),
                send_row("snd_cleo_mail2", CLEO, "email", touch=2, sent_at=later(30), provider="resend", message_id="<snd_cleo_mail2@routewise.example>"),
            ])
    return make


def test_phone_replies_belong_to_the_last_send_within_72_hours(seeded, driver, instance, db):
    seeded()
    _land([_reply("SMr71", "whatsapp", ANA["phone"], "Tell me more?", later(71)),
           _reply("SMr73", "sms", BEN["phone"], "Who is this?", later(73))])
    ingest_landed(driver, instance, later(74))
    got = _rows(db, "SELECT reply_id, send_id, campaign_id, touch, lead_id, attribution FROM replies ORDER BY reply_id")
    assert got == [("SMr71", "snd_ana_wa", "demo_drip", 1, "lead_ana", "number_72h"),
                   ("SMr73", None, None, None, "lead_ben", "none")]  # kept, unattributed; the lead is still known by number
    assert _rows(db, "SELECT lead_id, status FROM recipients ORDER BY lead_id") == [
        ("lead_ana", "replied"), ("lead_ben", "active"), ("lead_cleo", "active")]


def test_email_replies_thread_by_message_id_then_fall_back_to_the_sender(seeded, driver, instance, db):
    seeded()
    _land([
        _reply("rpl_thread", "email", "cleo@example.com", "Yes, let's talk", later(40), "imap",
               refs=["<other@elsewhere>", "<snd_cleo_mail@routewise.example>"]),
        _reply("rpl_plain", "email", "CLEO@example.com", "Also: pricing?", later(41), "imap", refs=[]),
        _reply("rpl_stranger", "email", "who@nowhere.example", "Hi?", later(41), "imap", refs=[]),
    ])
    ingest_landed(driver, instance, later(42))
    got = _rows(db, "SELECT reply_id, send_id, touch, attribution FROM replies ORDER BY reply_id")
    assert got == [("rpl_plain", "snd_cleo_mail2", 2, "sender_address"),  # the most recent email to that address
                   ("rpl_stranger", None, None, "none"),
                   ("rpl_thread", "snd_cleo_mail", 1, "thread")]  # threading beats the more recent send


def test_bounce_rate_over_the_threshold_pauses_the_campaign_and_says_why(workdir, db, driver, instance):
    add_campaign(instance, "demo_drip")
    leads = [{"lead_id": f"lead_{i}", "first_name": f"L{i}", "last_name": None, "email": f"l{i}@example.com", "phone": None} for i in range(25)]
    with db() as con:
        seed_campaign(con, workdir, bounce_pause_threshold=0.15)
        seed_leads(con, leads=tuple(leads))
        seed_sends(con, [send_row(f"snd_{i}", lead, "email", provider="resend", provider_message_id=f"em-{i}") for i, lead in enumerate(leads)])

    def bounce(i: int, kind: str = "Permanent") -> dict:
        return landing.make_record("resend", f"msg_b{i}", {"type": "email.bounced", "created_at": later(1).isoformat() + "Z",
                                                            "data": {"email_id": f"em-{i}", "bounce": {"type": kind, "message": "no such user"}}})

    for i in range(2):  # with the soft bounce below, 3 of 25 = 12%: under this campaign's 15%
        landing.append(bounce(i))
    landing.append(bounce(2, "Transient"))  # soft: counts as a bounce event, does not invalidate the address
    cursor = ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT status FROM campaigns") == [("running",)]
    assert _rows(db, "SELECT lead_id, status FROM leads WHERE status <> 'active' ORDER BY 1") == [("lead_0", "invalid"), ("lead_1", "invalid")]
    assert _rows(db, "SELECT count(*) FROM recipients WHERE status = 'paused'") == [(2,)]
    assert _rows(db, "SELECT count(*) FROM suppressions WHERE reason = 'hard_bounce'") == [(2,)]
    landing.append(bounce(3))  # 4 of 25 = 16%
    cursor2 = ingest_landed(driver, instance, later(3), cursor)
    (status, reason), = _rows(db, "SELECT status, status_reason FROM campaigns")
    assert status == "paused"
    assert reason == "bounce rate 16.0% (4 bounced of 25 sent) passed the 15.0% threshold"
    # A lifecycle move like any other: one campaign_events row with the reason, by the pipeline.
    assert _rows(db, "SELECT from_status, to_status, reason, actor, occurred_at FROM campaign_events") == [
        ("running", "paused", reason, "pipeline", later(3))]
    landing.append(bounce(4))  # already paused: no second transition, no second event
    ingest_landed(driver, instance, later(4), cursor2)
    assert _rows(db, "SELECT count(*) FROM campaign_events") == [(1,)]
    assert _rows(db, "SELECT status FROM campaigns") == [("paused",)]


def test_reply_modes_human_ticket_and_ai_answer_draft(seeded, driver, instance, db):
    seeded(reply_mode="ai")
    _land([_reply("SMq", "whatsapp", ANA["phone"], "Yes, happy to talk. Send me a time", later(5))])
    ingest_landed(driver, instance, later(6))
    assert _rows(db, "SELECT count(*) FROM tickets") == [(0,)]
    # The answer is a draft of the campaign's reply touch (touch 0), written by that touch's `drafts` run,
    # on the channel the reply came in on, citing the reply.
    open_touch(instance, "demo_drip", REPLY_TOUCH)
    assert driver.run(["drafts"], later(6), touch_key("demo_drip", REPLY_TOUCH)).success
    (draft,) = _rows(db, "SELECT reply_id, lead_id, channel, touch, cited_snippet_ids, body FROM drafts")
    assert draft[:5] == ("SMq", "lead_ana", "whatsapp", 0, '["SMq"]') and "Ana" in draft[5]
    assert _rows(db, "SELECT count(*) FROM approvals") == [(0,)]  # nothing is decided, or sent, by tracking or drafting
    (message,) = _rows(db, "SELECT message FROM notifications")[0]
    assert "Ana Ruiz replied to demo_drip" in message and "An answer is drafted for demo_drip.reply" in message


def test_inbound_whatsapp_opens_the_window_dispatch_reads(seeded, driver, instance, db):
    seeded()
    _land([_reply("SMw1", "whatsapp", ANA["phone"], "ok", later(5)), _reply("SMw0", "whatsapp", ANA["phone"], "hello", later(4))])
    ingest_landed(driver, instance, later(6))
    assert _rows(db, "SELECT lead_id, last_inbound_at, reply_id FROM inbound_windows") == [("lead_ana", later(5), "SMw1")]
    with db() as con:  # the exact join dispatch makes
        seed_sends(con, [send_row("snd_ana_wa2", ANA, "whatsapp", touch=2, status="pending", provider=None)])
        got = con.execute("""SELECT s.send_id, w.last_inbound_at FROM sends s
                             LEFT JOIN (SELECT lead_id, last_inbound_at FROM inbound_windows) w ON w.lead_id = s.lead_id
                             WHERE s.status = 'pending'""").fetchall()
    assert got == [("snd_ana_wa2", later(5))]
