"""Provider callbacks end to end: signed request -> landing area -> sensor -> run -> tables, and forged ones nowhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from outbound_pipeline.engine.dispatch import skip_suppressed
from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import create_app
from outbound_pipeline.store.views import current_statuses
from tests.conftest import add_campaign
from tests.defs.s6_track.helpers import (
    ANA,
    BEN,
    CLEO,
    SECRET,
    TOKEN,
    ingest_landed,
    later,
    resend_request,
    seed_campaign,
    seed_leads,
    seed_sends,
    send_row,
    twilio_headers,
)

STATUS_URL = "http://testserver/webhooks/twilio/status"
INBOUND_URL = "http://testserver/webhooks/twilio/inbound"

UNSUBSCRIBE_SECRET = "s6-unsubscribe-secret-0123456789"


class Clock:
    def __init__(self, at: datetime):
        self.at = at.replace(tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def world(workdir, db, instance):
    add_campaign(instance, "demo_drip")
    with db() as con:
        seed_campaign(con, workdir)
        seed_leads(con)
        seed_sends(con, [
            send_row("snd_ana_wa", ANA, "whatsapp", provider_message_id="SMana"),
            send_row("snd_ben_sms", BEN, "sms", provider_message_id="SMben"),
            send_row("snd_cleo_mail", CLEO, "email", provider="resend", provider_message_id="em-cleo", message_id="<snd_cleo_mail@routewise.example>"),
        ])
    clock = Clock(later(1))
    client = TestClient(create_app(TOKEN, SECRET, workdir / "landing", clock=clock, unsubscribe_secret=UNSUBSCRIBE_SECRET))
    return client, clock


def _status(client, sid: str, status: str, token: str = TOKEN, **extra) -> int:
    params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC1", "From": "+15550000000", "To": "+34600000002", **extra}
    return client.post("/webhooks/twilio/status", data=params, headers=twilio_headers(STATUS_URL, params, token)).status_code


def _inbound(client, sid: str, sender: str, body: str, token: str = TOKEN) -> int:
    params = {"MessageSid": sid, "From": sender, "To": "whatsapp:+15550000000", "Body": body, "NumMedia": "0"}
    return client.post("/webhooks/twilio/inbound", data=params, headers=twilio_headers(INBOUND_URL, params, token)).status_code


def _resend(client, clock, kind: str, email_id: str, msg_id: str, secret: str | None = None, **data) -> int:
    body = {"type": kind, "created_at": clock.at.isoformat(), "data": {"email_id": email_id, "to": ["cleo@example.com"],
                                                                         "tags": {"send_id": "snd_cleo_mail"}, **data}}
    raw, headers = resend_request(body, msg_id, clock.at, secret or SECRET)
    return client.post("/webhooks/resend", content=raw, headers=headers).status_code


def _rows(db, sql: str) -> list[tuple]:
    with db() as con:
        return con.execute(sql).fetchall()


def test_signed_callbacks_reach_the_tables_and_forged_ones_go_nowhere(world, driver, instance, db):
    client, clock = world
    assert _status(client, "SMben", "delivered") == 200
    assert _status(client, "SMben", "read", token="not-the-token") == 403
    assert _resend(client, clock, "email.delivered", "em-cleo", "msg_1") == 200
    assert _resend(client, clock, "email.opened", "em-cleo", "msg_2", secret="whsec_" + "Zm9yZ2VkLWtleS1mb3JnZWQta2V5LWZvcmdlZC0zMmI=") == 403
    assert _inbound(client, "SMin1", "whatsapp:+34600000001", "Sounds good, does Tuesday work?") == 200
    assert _inbound(client, "SMin2", "whatsapp:+34600000001", "forged", token="nope") == 403
    ingest_landed(driver, instance, later(2))
    events = _rows(db, "SELECT send_id, campaign_id, lead_id, event_type, provider FROM delivery_events ORDER BY event_type, send_id")
    assert events == [("snd_ben_sms", "demo_drip", "lead_ben", "delivered", "twilio"),
                      ("snd_cleo_mail", "demo_drip", "lead_cleo", "delivered", "resend")]
    replies = _rows(db, "SELECT reply_id, send_id, campaign_id, lead_id, intent, attribution FROM replies")
    assert replies == [("SMin1", "snd_ana_wa", "demo_drip", "lead_ana", "interested", "number_72h")]
    assert _rows(db, "SELECT status, status_reason FROM recipients WHERE lead_id = 'lead_ana'") == [("replied", "replied: interested")]
    assert _rows(db, "SELECT lead_id, owner_email FROM notifications") == [("lead_ana", "owner@example.com")]
    assert _rows(db, "SELECT lead_id, status FROM tickets") == [("lead_ana", "open")]  # reply_mode defaults to human
    assert _rows(db, "SELECT lead_id, last_inbound_at FROM inbound_windows") == [("lead_ana", later(1))]


def test_the_same_callback_three_times_is_one_row(world, driver, instance, db):
    client, clock = world
    for _ in range(3):
        assert _status(client, "SMben", "delivered") == 200
        assert _resend(client, clock, "email.delivered", "em-cleo", "msg_1") == 200
    cursor = ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT count(*) FROM delivery_events") == [(2,)]
    _status(client, "SMben", "delivered")  # a fourth delivery, in a later batch
    assert ingest_landed(driver, instance, later(3), cursor) is not None
    assert _rows(db, "SELECT count(*) FROM delivery_events") == [(2,)]


def test_delivered_before_sent_does_not_move_the_funnel_backwards(world, driver, instance, db):
    client, clock = world
    assert _status(client, "SMben", "delivered") == 200
    clock.at = later(1.5).replace(tzinfo=UTC)
    assert _status(client, "SMben", "sent") == 200
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT event_type FROM delivery_events ORDER BY occurred_at") == [("delivered",), ("sent",)]  # both kept
    with db() as con:
        status = current_statuses(con, ["snd_ben_sms"])
    assert status["status"].tolist() == ["delivered"]
    assert driver.run(["campaign_metrics"], later(2)).success
    assert _rows(db, "SELECT sent, delivered FROM campaign_metrics WHERE touch = 0") == [(3, 1)]


@pytest.mark.parametrize("body", ["stop.", "Stop!!"])
def test_stop_with_punctuation_suppresses_the_lead_everywhere(world, driver, instance, db, body):
    client, _ = world
    assert _inbound(client, "SMstop", "+34600000002", body) == 200
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT intent FROM replies") == [("opt_out",)]
    assert _rows(db, "SELECT lead_id, address, channel, reason FROM suppressions") == [("lead_ben", "+34600000002", "all", "opt_out")]
    assert _rows(db, "SELECT status FROM leads WHERE lead_id = 'lead_ben'") == [("opted_out",)]
    assert _rows(db, "SELECT count(*) FROM notifications") == [(0,)]  # an opt-out is not news for the owner's inbox
    # Dispatch checks the list before every send, on any channel.
    with db() as con:
        seed_sends(con, [send_row("snd_ben_mail2", BEN, "email", touch=2, status="pending", provider=None)])
        pending = con.execute("SELECT * FROM sends WHERE send_id = 'snd_ben_mail2'").df()
    remaining, suppressed = skip_suppressed(db, pending, later(3))
    assert suppressed == 1 and remaining.empty
    assert _rows(db, "SELECT status, error_message FROM sends WHERE send_id = 'snd_ben_mail2'") == [("suppressed", "suppressed: opt_out")]


def test_one_click_unsubscribe_suppresses_the_lead(world, driver, instance, db):
    client, _ = world
    resp = client.post(unsubscribe_tokens.link("/unsubscribe?send_id={send_id}", UNSUBSCRIBE_SECRET, "snd_cleo_mail"), content=b"List-Unsubscribe=One-Click",
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 200
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT lead_id, channel, reason FROM suppressions") == [("lead_cleo", "all", "unsubscribe_link")]
    assert _rows(db, "SELECT status FROM leads WHERE lead_id = 'lead_cleo'") == [("opted_out",)]
