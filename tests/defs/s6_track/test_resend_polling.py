"""Polling Resend's received emails (`GET /emails/receiving`, paged with `after`) when webhooks are missed.

Polled emails land as the `email.received` webhook does, so an email both announced by webhook and
listed by the poll becomes one reply; a poll that fails keeps its place in the cursor.
"""

from __future__ import annotations

import json

import dagster as dg
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.defs.resources import InboxService, PipelineClock
from outbound_pipeline.defs.s6_track.sensors import inbound_poll_sensor
from outbound_pipeline.store import landing
from tests.defs.s6_track.helpers import ingest_landed, later
from tests.defs.s6_track.test_reactions import _rows
from tests.defs.s6_track.test_resend_inbound import EMAIL_ID, KEY, THEIRS, _webhook, received_email, world  # noqa: F401 (fixture)

NEWER = "b3f1a2c4-0000-4000-8000-000000000002"
EARLIER = "b3f1a2c4-0000-4000-8000-000000000001"
ANCIENT = "b3f1a2c4-0000-4000-8000-000000000000"


def _listed(email_id: str, sender: str, created_at: str, message_id: str) -> dict:
    """One item of `GET /emails/receiving` (metadata only, as Resend lists it)."""
    return {"id": email_id, "to": ["sam@routewise.example"], "from": sender, "created_at": created_at, "subject": "Re: Hello",
            "bcc": [], "cc": [], "reply_to": [], "message_id": message_id, "attachments": []}


def _full(email_id: str, sender: str, created_at: str, message_id: str, text: str) -> dict:
    return {**_listed(email_id, sender, created_at, message_id), "object": "email", "html": None, "text": text,
            "received_for": ["sam@routewise.example"], "headers": {"Message-ID": message_id}}


PAGE_1 = {"object": "list", "has_more": True, "data": [
    _listed(NEWER, "Dan <dan@example.net>", "2026-01-05T11:30:00.000000+00:00", "<dan-1@example.net>"),
    _listed(EMAIL_ID, "Cleo <Cleo@Example.com>", "2026-01-05T11:00:00.000000+00:00", THEIRS)]}
PAGE_2 = {"object": "list", "has_more": True, "data": [  # the page reaches mail older than the window: paging stops here
    _listed(EARLIER, "Eve <eve@example.org>", "2026-01-05T10:30:00.000000+00:00", "<eve-1@example.org>"),
    _listed(ANCIENT, "Old <old@example.org>", "2025-12-20T10:00:00.000000+00:00", "<old-1@example.org>")]}


def _json(payload: dict, status: int = 200) -> Response:
    return Response(json.dumps(payload), status, content_type="application/json")


def _serve_list(httpserver: HTTPServer, pages: dict[str | None, dict], seen: list[Request]) -> None:
    def handler(request: Request) -> Response:
        seen.append(request)
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return _json({"statusCode": 401, "name": "invalid_api_key", "message": "bad key"}, 401)
        return _json(pages[request.args.get("after")])

    httpserver.expect_request("/emails/receiving", method="GET").respond_with_handler(handler)
    httpserver.expect_request("/emails", method="POST").respond_with_json({"id": "owner-note-1"})  # the owner is told of Cleo's reply
    for email_id, sender, at, mid, text in ((NEWER, "Dan <dan@example.net>", "2026-01-05T11:30:00+00:00", "<dan-1@example.net>", "Call me."),
                                            (EARLIER, "Eve <eve@example.org>", "2026-01-05T10:30:00+00:00", "<eve-1@example.org>", "Not now.")):
        httpserver.expect_request(f"/emails/receiving/{email_id}", method="GET").respond_with_json(_full(email_id, sender, at, mid, text))


def _tick(driver, cursor: str | None) -> tuple[dg.SkipReason, dict]:
    resources = {"channels": driver.base["channels"], "inbox": InboxService(), "clock": PipelineClock(now_iso=later(3).isoformat())}
    with dg.build_sensor_context(cursor=cursor, resources=resources) as context:
        result = inbound_poll_sensor(context)
        return result, json.loads(context.cursor)


def test_polled_emails_page_with_after_and_meet_the_webhook_as_one_reply(world, driver, instance, db, httpserver):  # noqa: F811
    client, clock, _fetched = world
    listed: list[Request] = []
    _serve_list(httpserver, {None: PAGE_1, EMAIL_ID: PAGE_2}, listed)
    assert _webhook(client, clock) == 200  # the webhook saw Cleo's email too

    result, cursor = _tick(driver, None)
    assert "landed 3" in result.skip_message
    assert [(r.args.get("limit"), r.args.get("after")) for r in listed] == [("100", None), ("100", EMAIL_ID)]
    assert cursor == {"resend": {"since": "2026-01-05T11:30:00", "seen": [NEWER]}}
    polled = [r for r in landing.read_since(None)[0] if r["landing_id"].startswith("poll:")]
    assert [r["payload"]["type"] for r in polled] == ["email.received"] * 3
    assert [r["payload"]["data"]["email_id"] for r in polled] == [EARLIER, EMAIL_ID, NEWER]  # oldest first

    ingest_landed(driver, instance, later(4))
    assert _rows(db, "SELECT from_address, send_id, attribution, body FROM replies ORDER BY received_at") == [
        ("eve@example.org", None, "none", "Not now."),
        ("cleo@example.com", "snd_cleo_mail", "thread", "Yes, Thursday works. What does it cost?"),
        ("dan@example.net", None, "none", "Call me."),
    ]

    # Nothing new next tick: the first page ends at what the cursor already holds.
    listed.clear()
    result, again = _tick(driver, json.dumps(cursor))
    assert "landed 0" in result.skip_message and again == cursor and len(listed) == 1


def test_a_failing_poll_keeps_its_cursor_and_asks_again(world, driver, httpserver):  # noqa: F811
    calls: list[Request] = []

    def broken(request: Request) -> Response:
        calls.append(request)
        return _json({"statusCode": 500, "name": "internal_server_error", "message": "try later"}, 500)

    httpserver.expect_request("/emails/receiving", method="GET").respond_with_handler(broken)
    cursor = json.dumps({"resend": {"since": "2026-01-05T11:00:00", "seen": [EMAIL_ID]}})
    result, after = _tick(driver, cursor)
    assert "failed: resend" in result.skip_message
    assert after == json.loads(cursor) and len(calls) == 1  # one attempt per tick; the next tick is the retry
    assert not [r for r in landing.read_since(None)[0] if r["landing_id"].startswith("poll:")]
