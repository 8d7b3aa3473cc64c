"""Polling what webhooks can miss: Twilio's Messages list (paged) and an IMAP mailbox; the poll sensor's cursor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from outbound_pipeline.defs.resources import ChannelService, InboxService, PipelineClock
from outbound_pipeline.defs.s6_track.sensors import inbound_poll_sensor
from outbound_pipeline.providers.inbox_imap import ImapInbox
from outbound_pipeline.providers.messaging_twilio import TwilioMessaging
from outbound_pipeline.store import landing
from tests.defs.s6_track.imap_server import Mailbox, serve

ACCOUNT = "AC" + "0123456789abcdef" * 2
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
SINCE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _message(sid: str, sender: str, body: str, at: datetime, direction: str = "inbound") -> dict:
    return {"account_sid": ACCOUNT, "api_version": "2010-04-01", "body": body, "date_created": format_datetime(at), "date_sent": format_datetime(at),
            "date_updated": format_datetime(at), "direction": direction, "error_code": None, "error_message": None, "from": sender,
            "messaging_service_sid": None, "num_media": "0", "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid,
            "status": "received" if direction == "inbound" else "delivered", "subresource_uris": {}, "to": "+15550000000",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"}


def _page(messages: list[dict], page: int, next_uri: str | None) -> dict:
    return {"messages": messages, "end": page * 2 + len(messages) - 1, "first_page_uri": f"{MESSAGES}?PageSize=2&Page=0",
            "next_page_uri": next_uri, "page": page, "page_size": 2, "previous_page_uri": None, "start": page * 2,
            "uri": f"{MESSAGES}?PageSize=2&Page={page}"}


def test_twilio_poll_inbound_reads_every_page_and_keeps_inbound_after_the_cursor(httpserver: HTTPServer) -> None:
    at = lambda minutes: SINCE.replace(minute=minutes)  # noqa: E731
    next_uri = f"{MESSAGES}?PageSize=2&Page=1&PageToken=PAabc"
    httpserver.expect_ordered_request(MESSAGES, method="GET", query_string={"DateSent>": "2026-01-05T09:00:00Z", "PageSize": "2"}).respond_with_json(
        _page([_message("SMold", "+34600000009", "seen", at(0)), _message("SM1", "whatsapp:+34600000001", "Yes please", at(5))], 0, next_uri))
    httpserver.expect_ordered_request(MESSAGES, method="GET", query_string={"PageSize": "2", "Page": "1", "PageToken": "PAabc"}).respond_with_json(
        _page([_message("SMout", "+15550000000", "our own", at(6), "outbound-api"), _message("SM2", "+34600000002", "STOP", at(7))], 1, None))
    twilio = TwilioMessaging(ACCOUNT, "token", messaging_service_sid="MG1", base_url=httpserver.url_for(""), sleep=lambda s: None)
    found = twilio.poll_inbound(SINCE, seen=["SMold"], page_size=2)
    assert found[["reply_id", "channel", "from_address", "body"]].values.tolist() == [
        ["SM1", "whatsapp", "+34600000001", "Yes please"], ["SM2", "sms", "+34600000002", "STOP"]]
    assert found["received_at"].tolist() == [at(5).replace(tzinfo=None), at(7).replace(tzinfo=None)]
    assert len(httpserver.log) == 2


REPLY = b"""From: Cleo Diaz <Cleo@Example.com>\r
To: sam@routewise.example\r
Subject: Re: Hello\r
Date: Mon, 05 Jan 2026 11:30:00 +0100\r
Message-ID: <reply-1@example.com>\r
In-Reply-To: <snd_cleo_mail@routewise.example>\r
References: <thread-start@routewise.example> <snd_cleo_mail@routewise.example>\r
Content-Type: text/plain; charset=utf-8\r
\r
Yes, Thursday works.\r
\r
On Mon, Jan 5, 2026 at 10:00 Sam wrote:\r
> Hi Cleo\r
"""
OOO = b"""From: ben@example.com\r
Subject: Automatic reply\r
Auto-Submitted: auto-replied\r
Message-ID: <ooo-1@example.com>\r
Content-Type: text/plain\r
\r
I am out of the office.\r
"""


@pytest.fixture
def mailbox():
    box = Mailbox("replies@routewise.example", "imap-secret")
    server, port = serve(box)
    yield box, port
    server.shutdown()
    server.server_close()


def test_imap_poll_parses_replies_and_keeps_its_place(mailbox) -> None:
    box, port = mailbox
    box.add(REPLY)
    box.add(OOO)
    inbox = ImapInbox("127.0.0.1", "replies@routewise.example", "imap-secret", port=port, use_ssl=False)
    found, cursor = inbox.poll(None)
    assert cursor == "42:2"
    first = found.iloc[0]
    assert (first["from_address"], first["body"], first["intent"], first["channel"]) == ("cleo@example.com", "Yes, Thursday works.", "unknown", "email")
    assert json.loads(first["thread_refs"]) == ["<snd_cleo_mail@routewise.example>", "<thread-start@routewise.example>"]
    assert first["received_at"] == datetime(2026, 1, 5, 10, 30)  # UTC
    assert found.iloc[1]["intent"] == "auto_reply"
    again, same = inbox.poll(cursor)
    assert again.empty and same == "42:2"  # `3:*` still matches the last message; it is not returned twice
    box.add(REPLY.replace(b"reply-1", b"reply-2"))
    newer, moved = inbox.poll(cursor)
    assert len(newer) == 1 and moved == "42:3"
    assert "STORE" not in box.commands and "EXAMINE" in box.commands  # read-only: nothing marked or deleted


def test_poll_sensor_lands_replies_and_a_failing_source_keeps_its_place(mailbox, workdir) -> None:
    box, port = mailbox
    box.add(REPLY)
    resources = {"channels": ChannelService(), "clock": PipelineClock(now_iso="2026-01-05T12:00:00"),
                 "inbox": InboxService(host="127.0.0.1", port=port, user="replies@routewise.example", password="imap-secret", use_ssl=False)}
    with dg.build_sensor_context(cursor=None, resources=resources) as context:
        result = inbound_poll_sensor(context)
        assert isinstance(result, dg.SkipReason) and "landed 1" in result.skip_message
        assert json.loads(context.cursor) == {"imap": "42:1"}
    (record,) = landing.read_since(None)[0]
    assert record["source"] == "polled_reply" and record["payload"]["from_address"] == "cleo@example.com"
    broken = {**resources, "inbox": InboxService(host="127.0.0.1", port=port, user="replies@routewise.example", password="wrong", use_ssl=False)}
    with dg.build_sensor_context(cursor=json.dumps({"imap": "42:1"}), resources=broken) as context:
        result = inbound_poll_sensor(context)
        assert "failed: imap" in result.skip_message
        assert json.loads(context.cursor) == {"imap": "42:1"}  # retried next tick from the same place
    assert len(landing.read_since(None)[0]) == 1
