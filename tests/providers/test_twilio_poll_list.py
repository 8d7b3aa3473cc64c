"""Polling many messages reads Twilio's Messages list by day instead of one request per message."""

from __future__ import annotations

from datetime import timedelta
from email.utils import format_datetime

import pandas as pd
from pytest_httpserver import HTTPServer

from tests.providers.test_messaging_twilio import AUTH, LEAD, MESSAGES, NOW, _fetch_path, make, resource


def _listed(sid: str, status: str) -> dict:
    return resource(sid, LEAD, "x", status=status, date_sent=format_datetime(NOW + timedelta(seconds=1)),
                    date_updated=format_datetime(NOW + timedelta(minutes=1)))


def test_many_messages_are_read_from_the_list_and_the_rest_fetched_one_by_one(httpserver: HTTPServer) -> None:
    page = {"messages": [_listed("SMa", "delivered"), _listed("SMb", "read"), _listed("SMother", "delivered")],
            "next_page_uri": None, "page": 0, "page_size": 1000, "first_page_uri": f"{MESSAGES}?PageSize=1000&Page=0",
            "previous_page_uri": None, "uri": f"{MESSAGES}?PageSize=1000&Page=0", "start": 0, "end": 2}
    httpserver.expect_request(MESSAGES, method="GET", headers=AUTH,
                              query_string={"DateSent>": "2026-03-02T00:00:00Z", "PageSize": "1000"}).respond_with_json(page)
    httpserver.expect_request(_fetch_path("SMq"), method="GET").respond_with_json(_listed("SMq", "delivered"))
    twilio = make(httpserver, [], list_above=2)
    sends = pd.DataFrame({"send_id": ["snd_a", "snd_b", "snd_q"], "campaign_id": "c", "touch": 1, "lead_id": ["l1", "l2", "l3"],
                          "channel": ["sms", "whatsapp", "sms"], "provider": "twilio", "provider_message_id": ["SMa", "SMb", "SMq"],
                          "sent_at": [NOW.replace(tzinfo=None)] * 3, "updated_at": [NOW.replace(tzinfo=None)] * 3})

    events, _ = twilio.poll_events(sends, until=NOW + timedelta(hours=1))

    assert sorted(zip(events["send_id"], events["event_type"], strict=True)) == [
        ("snd_a", "delivered"), ("snd_a", "sent"), ("snd_b", "delivered"), ("snd_b", "read"), ("snd_b", "sent"),
        ("snd_q", "delivered"), ("snd_q", "sent")]
    paths = [request.path for request, _ in httpserver.log]
    assert paths.count(MESSAGES) == 1 and paths.count(_fetch_path("SMq")) == 1 and len(paths) == 2  # SMq was not in the list
    assert not any(p.endswith("SMa.json") or p.endswith("SMb.json") for p in paths)
