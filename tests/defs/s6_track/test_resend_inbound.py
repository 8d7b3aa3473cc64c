"""Inbound email through Resend: a signed `email.received` webhook -> landing -> the email fetched in full -> a reply."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from starlette.testclient import TestClient
from werkzeug import Request, Response

from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.defs.s6_track.sensors import landing_sensor
from outbound_pipeline.http.app import create_app
from outbound_pipeline.ids import stable_id
from outbound_pipeline.runner import TRACK
from tests.conftest import add_campaign
from tests.defs.s6_track.helpers import (
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
)
from tests.defs.s6_track.test_reactions import _land, _reply, _rows
from tests.defs.s6_track.test_webhooks_to_tables import Clock

KEY = "re_inbound_key"
OURS = "<snd_cleo_mail@routewise.example>"
THEIRS = "<CAB-cleo-42@mail.example.com>"
EMAIL_ID = "4ef9a417-02e9-4d39-ad75-9611e0fcc33c"


def received_email() -> dict:
    """`GET /emails/receiving/{id}` as Resend answers it."""
    return {
        "object": "email", "id": EMAIL_ID, "to": ["sam@routewise.example"], "from": "Cleo <Cleo@Example.com>",
        "created_at": "2026-01-05T11:00:00.000000+00:00", "subject": "Re: Hello",
        "html": None, "text": "Yes, Thursday works. What does it cost?\n\nOn Mon, 5 Jan 2026, Sam wrote:\n> Hi Cleo",
        "bcc": [], "cc": [], "reply_to": [], "received_for": ["sam@routewise.example"], "message_id": THEIRS,
        "headers": {"In-Reply-To": OURS, "References": f"<older@routewise.example> {OURS}", "Message-ID": THEIRS},
        "attachments": [],
    }


@pytest.fixture
def world(workdir, db, instance, driver, httpserver: HTTPServer):
    add_campaign(instance, "demo_drip")
    with db() as con:
        seed_campaign(con, workdir)
        seed_leads(con, leads=(CLEO,))
        seed_sends(con, [send_row("snd_cleo_mail", CLEO, "email", provider="resend", message_id=OURS),
                         send_row("snd_cleo_mail2", CLEO, "email", touch=2, sent_at=later(0.5), provider="resend",
                                  message_id="<snd_cleo_mail2@routewise.example>")])
    fetched: list[Request] = []

    def get(request: Request) -> Response:
        fetched.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return Response(json.dumps({"statusCode": 401, "name": "invalid_api_key", "message": "bad key"}), 401,
                            content_type="application/json")
        return Response(json.dumps(received_email()), 200, content_type="application/json")

    httpserver.expect_request(f"/emails/receiving/{EMAIL_ID}", method="GET").respond_with_handler(get)
    driver.base["channels"] = ChannelService(resend_api_key=KEY, resend_base_url=httpserver.url_for(""),
                                             offline_ledger_dir=str(workdir / "offline_ledger"))
    clock = Clock(later(2))
    return TestClient(create_app(TOKEN, SECRET, workdir / "landing", clock=clock)), clock, fetched


def _webhook(client, clock, msg_id: str = "msg_received_1", secret: str = SECRET) -> int:
    body = {"type": "email.received", "created_at": "2026-01-05T11:00:01.000Z",
            "data": {"email_id": EMAIL_ID, "created_at": "2026-01-05T11:00:00.000Z", "from": "Cleo <Cleo@Example.com>",
                     "to": ["sam@routewise.example"], "bcc": [], "cc": [], "message_id": THEIRS, "subject": "Re: Hello",
                     "attachments": []}}
    raw, headers = resend_request(body, msg_id, clock.at, secret)
    return client.post("/webhooks/resend", content=raw, headers=headers).status_code


def test_received_email_is_fetched_and_threads_to_our_send(world, driver, instance, db):
    client, clock, fetched = world
    assert _webhook(client, clock) == 200
    assert _webhook(client, clock, "msg_received_1") == 200  # Svix redelivers: the same email twice
    assert _webhook(client, clock, "msg_forged", secret="whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MTIzNDU2") == 403
    cursor = ingest_landed(driver, instance, later(3))

    assert len(fetched) == 1 and fetched[0].headers["Authorization"] == f"Bearer {KEY}"
    rows = _rows(db, "SELECT send_id, touch, lead_id, channel, from_address, body, attribution, provider, message_id, thread_refs, received_at "
                     "FROM replies")
    assert rows == [("snd_cleo_mail", 1, "lead_cleo", "email", "cleo@example.com", "Yes, Thursday works. What does it cost?",
                     "thread", "resend", THEIRS, json.dumps([OURS, "<older@routewise.example>"]), later(2))]
    assert _rows(db, "SELECT status FROM recipients") == [("replied",)]
    assert _rows(db, "SELECT count(*) FROM tickets") == [(1,)]  # reply_mode human

    # The same email read from the IMAP mailbox as well is the same reply (its id comes from the Message-ID).
    _land([{**_reply(stable_id("rpl", "email", THEIRS), "email", "cleo@example.com", "Yes, Thursday works.", later(2), "imap",
                     refs=[OURS]), "message_id": THEIRS}])
    ingest_landed(driver, instance, later(4), cursor)
    assert _rows(db, "SELECT count(*), any_value(provider) FROM replies") == [(1, "resend")]


def test_an_unreadable_email_fails_the_run_and_a_re_execution_stores_it_once(world, driver, instance, db, workdir):
    client, clock, fetched = world
    assert _webhook(client, clock) == 200
    good = driver.base["channels"]
    driver.base["channels"] = ChannelService(resend_api_key="re_wrong_key", resend_base_url=good.resend_base_url,
                                             offline_ledger_dir=str(workdir / "offline_ledger"))
    context = dg.build_sensor_context(instance=instance)
    request = landing_sensor(context)
    with pytest.raises(dg.Failure, match="1 inbound emails could not be read"):
        driver.run(TRACK, later(3), run_config=request.run_config)
    assert _rows(db, "SELECT count(*) FROM replies") == [(0,)]
    driver.base["channels"] = good  # the key fixed: re-executing the same batch reads it, once
    assert driver.run(TRACK, later(3), run_config=request.run_config).success
    assert driver.run(TRACK, later(3), run_config=request.run_config).success
    assert _rows(db, "SELECT count(*), any_value(body) FROM replies") == [(1, "Yes, Thursday works. What does it cost?")]
