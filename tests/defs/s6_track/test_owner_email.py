"""Owner notifications by email through Resend: one email per reply, never two, whatever reruns."""

from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.runner import TRACK
from tests.defs.s6_track.helpers import ANA, BEN, ingest_landed, later
from tests.defs.s6_track.test_reactions import _land, _reply, _rows, seeded  # noqa: F401  (fixture)

KEY = "re_owner_test_key"


class FakeResend:
    """Resend's `POST /emails`: Bearer auth, JSON, and Idempotency-Key honoured (the same key answers the first id)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.by_key: dict[str, str] = {}

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return Response(json.dumps({"statusCode": 401, "name": "invalid_api_key", "message": "API key is invalid"}), 401,
                            content_type="application/json")
        payload = json.loads(request.get_data())
        self.requests.append((dict(request.headers), payload))
        key = request.headers["Idempotency-Key"]
        email_id = self.by_key.setdefault(key, f"em_{len(self.by_key) + 1}")
        return Response(json.dumps({"id": email_id}), 200, content_type="application/json")


@pytest.fixture
def resend_server(httpserver: HTTPServer, driver, workdir) -> FakeResend:
    fake = FakeResend()
    httpserver.expect_request("/emails", method="POST").respond_with_handler(fake)
    driver.base["channels"] = ChannelService(resend_api_key=KEY, resend_base_url=httpserver.url_for(""),
                                             offline_ledger_dir=str(workdir / "offline_ledger"))
    return fake


def test_each_reply_emails_its_owner_once(seeded, resend_server, driver, instance, db):  # noqa: F811
    seeded()
    with db() as con:  # Ben has an owner of his own; Ana's falls back to the campaign's owner_email
        con.execute("UPDATE leads SET owner_email = 'ben.owner@example.com' WHERE lead_id = 'lead_ben'")
    _land([_reply("SMa", "whatsapp", ANA["phone"], "Sounds good, when?", later(5)),
           _reply("SMb", "sms", BEN["phone"], "Is this about routing?", later(6)),
           _reply("SMstop", "sms", BEN["phone"], "STOP", later(6.5))])  # an opt-out notifies nobody
    cursor = ingest_landed(driver, instance, later(7))

    notifications = _rows(db, "SELECT notification_id, owner_email, emailed_at FROM notifications ORDER BY owner_email")
    assert [(owner, at) for _, owner, at in notifications] == [("ben.owner@example.com", later(7)), ("owner@example.com", later(7))]
    assert len(resend_server.requests) == 2
    by_to = {payload["to"][0]: (headers, payload) for headers, payload in resend_server.requests}
    assert set(by_to) == {"ben.owner@example.com", "owner@example.com"}
    for notification_id, owner, _ in notifications:
        headers, payload = by_to[owner]
        assert headers["Idempotency-Key"] == notification_id  # the notification id is the key
        assert headers["Content-Type"] == "application/json"
        assert payload["subject"].startswith("Reply: ")
    assert "Ben Ode replied to demo_drip" in by_to["ben.owner@example.com"][1]["text"]
    assert "Is this about routing?" in by_to["ben.owner@example.com"][1]["text"]

    # A later run, with nothing new, emails nobody.
    assert ingest_landed(driver, instance, later(8), cursor) is None
    assert driver.run(TRACK, later(8), run_config={"ops": {"track": {"config": {"from_cursor": cursor}}}}).success
    assert len(resend_server.requests) == 2

    # A crash after Resend accepted but before `emailed_at` was written: the rerun asks again with the
    # same Idempotency-Key, so Resend answers the first email's id and nobody gets a second email.
    with db() as con:
        con.execute("UPDATE notifications SET emailed_at = NULL")
    assert driver.run(TRACK, later(9), run_config={"ops": {"track": {"config": {"from_cursor": cursor}}}}).success
    keys = [headers["Idempotency-Key"] for headers, _ in resend_server.requests]
    assert len(keys) == 4 and sorted(keys[2:]) == sorted(keys[:2])
    assert len(resend_server.by_key) == 2  # two distinct emails ever accepted
    assert _rows(db, "SELECT count(*) FROM notifications WHERE emailed_at IS NULL") == [(0,)]
