"""Opt-outs per channel (OUTBOUND_OPT_OUT_SCOPE=channel): STOP on SMS stops SMS, an email unsubscribe stops email, "STOP ALL"
stops everything; sends are checked against them before every send, and `outbound contacts show` lists them."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from outbound_pipeline.cli.contacts import show_contact
from outbound_pipeline.engine.dispatch import skip_suppressed
from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import create_app
from tests.conftest import add_campaign
from tests.defs.s6_track.helpers import (
    BEN,
    CLEO,
    SECRET,
    TOKEN,
    ingest_landed,
    later,
    seed_campaign,
    seed_leads,
    seed_sends,
    send_row,
    twilio_headers,
)
from tests.defs.s6_track.test_webhooks_to_tables import INBOUND_URL, UNSUBSCRIBE_SECRET, Clock


@pytest.fixture
def client(workdir, db, instance, monkeypatch):
    monkeypatch.setenv("OUTBOUND_OPT_OUT_SCOPE", "channel")
    add_campaign(instance, "demo_drip")
    with db() as con:
        seed_campaign(con, workdir)
        seed_leads(con)
        seed_sends(con, [send_row("snd_ben_sms", BEN, "sms", provider_message_id="SMben"),
                         send_row("snd_cleo_mail", CLEO, "email", provider="resend", provider_message_id="em-cleo")])
    return TestClient(create_app(TOKEN, SECRET, workdir / "landing", clock=Clock(later(1)), unsubscribe_secret=UNSUBSCRIBE_SECRET))


def _sms_from(client, sid: str, sender: str, body: str) -> None:
    params = {"MessageSid": sid, "From": sender, "To": "+15550000000", "Body": body, "NumMedia": "0"}
    assert client.post("/webhooks/twilio/inbound", data=params, headers=twilio_headers(INBOUND_URL, params, TOKEN)).status_code == 200


def _rows(db, sql: str) -> list[tuple]:
    with db() as con:
        return con.execute(sql).fetchall()


def _pending(db, *rows: dict) -> tuple[list[str], int]:
    """Queue these sends and run the pre-send check: (send ids allowed, how many were suppressed)."""
    with db() as con:
        seed_sends(con, list(rows))
        pending = con.execute("SELECT * FROM sends WHERE status = 'pending' ORDER BY send_id").df()
    remaining, suppressed = skip_suppressed(db, pending, later(3))
    return sorted(remaining["send_id"]), suppressed


def test_stop_on_sms_opts_out_of_sms_only(client, driver, instance, db):
    _sms_from(client, "SMstop", BEN["phone"], "STOP")
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT lead_id, address, channel, reason FROM suppressions") == [("lead_ben", BEN["phone"], "sms", "opt_out")]
    assert _rows(db, "SELECT status FROM leads WHERE lead_id = 'lead_ben'") == [("active",)]
    assert _rows(db, "SELECT status FROM recipients WHERE lead_id = 'lead_ben'") == [("active",)]
    allowed, suppressed = _pending(db, send_row("snd_ben_sms2", BEN, "sms", touch=2, status="pending", provider=None),
                                   send_row("snd_ben_wa2", BEN, "whatsapp", touch=2, status="pending", provider=None),
                                   send_row("snd_ben_mail2", BEN, "email", touch=2, status="pending", provider=None))
    assert allowed == ["snd_ben_mail2", "snd_ben_wa2"] and suppressed == 1
    assert _rows(db, "SELECT status, error_message FROM sends WHERE send_id = 'snd_ben_sms2'") == [("suppressed", "suppressed: opt_out")]
    shown = show_contact("lead_ben", _db_path(db))
    assert "preferences: opted out of sms; other channels allowed" in shown and "opt-outs (1)" in shown


def test_email_unsubscribe_opts_out_of_email_only(client, driver, instance, db):
    link = unsubscribe_tokens.link("/unsubscribe?send_id={send_id}", UNSUBSCRIBE_SECRET, "snd_cleo_mail")
    assert client.post(link, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT lead_id, channel, reason FROM suppressions") == [("lead_cleo", "email", "unsubscribe_link")]
    assert _rows(db, "SELECT status FROM leads WHERE lead_id = 'lead_cleo'") == [("active",)]
    allowed, suppressed = _pending(db, send_row("snd_cleo_mail2", CLEO, "email", touch=2, status="pending", provider=None),
                                   send_row("snd_cleo_sms2", CLEO, "sms", touch=2, status="pending", provider=None))
    assert allowed == ["snd_cleo_sms2"] and suppressed == 1


def test_stop_all_opts_out_of_every_channel(client, driver, instance, db):
    _sms_from(client, "SMstopall", BEN["phone"], "STOP ALL")
    ingest_landed(driver, instance, later(2))
    assert _rows(db, "SELECT lead_id, channel FROM suppressions") == [("lead_ben", "all")]
    assert _rows(db, "SELECT status FROM leads WHERE lead_id = 'lead_ben'") == [("opted_out",)]
    allowed, suppressed = _pending(db, send_row("snd_ben_mail2", BEN, "email", touch=2, status="pending", provider=None))
    assert allowed == [] and suppressed == 1
    assert "preferences: opted out of every channel" in show_contact("lead_ben", _db_path(db))


def _db_path(db) -> str:
    with db() as con:
        return str(con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0])
