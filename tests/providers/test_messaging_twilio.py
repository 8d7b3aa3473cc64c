"""TwilioMessaging against a local server speaking Twilio's wire format.

Requests are form-encoded with HTTP Basic auth; answers are the real Message
resource (201) and the real error body {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage, ProviderError, WhatsAppTemplate
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.providers.messaging_twilio import EVENT_COLUMNS, REPLY_COLUMNS, TwilioMessaging, inside_window, template_variables
from outbound_pipeline.store.validation import validate

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "test_auth_token"
SERVICE = "MG" + "fedcba9876543210" * 2
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()}
CALLBACK = "https://hooks.seller.example/twilio/status"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = "+351912345678"
TEMPLATE = WhatsAppTemplate("HX" + "1" * 32, {"1": "first_name", "2": "company", "3": "custom.city", "4": "static:Sara"})


def _msg(i: int = 1, **overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "send_id": f"snd_{i:04d}",
        "idempotency_key": f"snd_{i:04d}",
        "campaign_id": "cmp_q2",
        "touch": 1,
        "lead_id": f"lead_{i}",
        "channel": "whatsapp",
        "to": LEAD,
        "body": "Hi Ana, thanks for the reply! Does Thursday work?",
        "variables": {"first_name": "Ana", "company": "Acme", "custom.city": "Lisbon"},
        "sent_at": NOW,
        "last_inbound_at": NOW - timedelta(hours=3),
        "whatsapp_template": TEMPLATE,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def _sms(i: int = 1, **overrides: Any) -> OutboundMessage:
    fields: dict[str, Any] = {"channel": "sms", "body": "Hi Ana, quick question about Acme's Lisbon office.", "last_inbound_at": None}
    return _msg(i, **{**fields, **overrides})


def resource(sid: str, to: str, body: str, status: str = "accepted", *, from_: str | None = None, **extra: Any) -> dict[str, Any]:
    """A Message resource as Twilio returns it."""
    created = extra.pop("date_created", NOW)
    data = {
        "account_sid": ACCOUNT,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": format_datetime(created),
        "date_sent": None,
        "date_updated": format_datetime(created),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": from_,
        "messaging_service_sid": SERVICE,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}/Media.json"},
        "to": to,
        "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
    }
    data.update(extra)
    return data


def error(code: int, message: str, status: int = 400) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}


def page(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "messages": messages,
        "end": max(0, len(messages) - 1),
        "first_page_uri": f"{MESSAGES}?PageSize=50&Page=0",
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": None,
        "start": 0,
        "uri": f"{MESSAGES}?PageSize=50&Page=0",
    }


def forms(server: HTTPServer, method: str = "POST") -> list[dict[str, str]]:
    return [dict(req.form) for req, _ in server.log if req.method == method]


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make(server: HTTPServer, sleeps: list[float], **kwargs: Any) -> TwilioMessaging:
    options: dict[str, Any] = {
        "messaging_service_sid": SERVICE,
        "status_callback_url": CALLBACK,
        "sms_per_second_per_number": 0,
        "sleep": sleeps.append,
        "clock": lambda: NOW,
    }
    options.update(kwargs)
    return TwilioMessaging(ACCOUNT, TOKEN, base_url=server.url_for(""), **options)


@pytest.fixture
def twilio(httpserver: HTTPServer, sleeps: list[float]) -> TwilioMessaging:
    return make(httpserver, sleeps)


# ---------------------------------------------------------------- whatsapp


def test_is_a_channel_provider(twilio: TwilioMessaging) -> None:
    assert isinstance(twilio, ChannelProvider)
    assert twilio.name == "twilio" and twilio.channels == ("whatsapp", "sms")


def test_whatsapp_inside_window_sends_free_form_body(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST", headers=AUTH).respond_with_json(
        resource("SM" + "a" * 32, f"whatsapp:{LEAD}", _msg().body), status=201
    )

    result = twilio.send(_msg())

    assert forms(httpserver) == [
        {
            "To": f"whatsapp:{LEAD}",
            "MessagingServiceSid": SERVICE,
            "Body": "Hi Ana, thanks for the reply! Does Thursday work?",
            "StatusCallback": CALLBACK,
        }
    ]
    assert httpserver.log[0][0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert result.status == "sent" and result.provider_message_id == "SM" + "a" * 32
    assert result.cost_usd == pytest.approx(0.005) and result.segments is None and result.flags == []


def test_whatsapp_outside_window_sends_the_template(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST", headers=AUTH).respond_with_json(
        resource("SM" + "b" * 32, f"whatsapp:{LEAD}", "Hi Ana, ..."), status=201
    )

    result = twilio.send(_msg(last_inbound_at=NOW - timedelta(hours=25)))

    (form,) = forms(httpserver)
    assert form == {
        "To": f"whatsapp:{LEAD}",
        "MessagingServiceSid": SERVICE,
        "ContentSid": TEMPLATE.content_sid,
        "ContentVariables": '{"1": "Ana", "2": "Acme", "3": "Lisbon", "4": "Sara"}',
        "StatusCallback": CALLBACK,
    }
    assert "Body" not in form
    assert result.status == "sent" and result.flags == []


MEDIA_TEMPLATE = WhatsAppTemplate("HX" + "2" * 32, {"1": "first_name", "2": "custom.order"},
                                  media_url="https://cdn.shop.example/orders/{{2}}.png", buttons=("Track it", "Talk to us"))


def test_whatsapp_free_text_inside_the_window_carries_the_step_media(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST", headers=AUTH).respond_with_json(
        resource("SM" + "c" * 32, f"whatsapp:{LEAD}", _msg().body, num_media="1"), status=201
    )

    result = twilio.send(_msg(media_url="https://cdn.shop.example/menu.pdf"))

    (form,) = forms(httpserver)
    assert form["Body"] == _msg().body and form["MediaUrl"] == "https://cdn.shop.example/menu.pdf"
    assert "ContentSid" not in form and result.status == "sent"


def test_media_and_quick_reply_template_outside_the_window_goes_by_content_sid(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    """The Content template holds its media and buttons at Twilio: only its SID and the slot values are sent,
    never a MediaUrl or Body of our own (WhatsApp refuses free-form content outside the window)."""
    httpserver.expect_request(MESSAGES, method="POST", headers=AUTH).respond_with_json(
        resource("SM" + "d" * 32, f"whatsapp:{LEAD}", "Hi Ana, order A-17 is on its way.", num_media="1"), status=201
    )
    message = _msg(last_inbound_at=NOW - timedelta(days=2), whatsapp_template=MEDIA_TEMPLATE, media_url="https://cdn.shop.example/menu.pdf",
                   variables={"first_name": "Ana", "custom.order": "A-17"})

    result = twilio.send(message)

    (form,) = forms(httpserver)
    assert form == {"To": f"whatsapp:{LEAD}", "MessagingServiceSid": SERVICE, "ContentSid": MEDIA_TEMPLATE.content_sid,
                    "ContentVariables": '{"1": "Ana", "2": "A-17"}', "StatusCallback": CALLBACK}
    assert result.status == "sent" and result.flags == []


def test_never_written_lead_is_outside_window(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM1", f"whatsapp:{LEAD}", "x"), status=201)
    twilio.send(_msg(last_inbound_at=None))
    assert "ContentSid" in forms(httpserver)[0]


def test_missing_template_value_stays_visible_and_is_flagged(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM2", f"whatsapp:{LEAD}", "x"), status=201)

    result = twilio.send(_msg(last_inbound_at=None, variables={"first_name": "Ana", "company": ""}))

    assert json.loads(forms(httpserver)[0]["ContentVariables"]) == {"1": "Ana", "2": "{{2}}", "3": "{{3}}", "4": "Sara"}
    assert result.status == "sent"
    assert result.flags == ["template_variable_missing:2", "template_variable_missing:3"]


def test_no_template_outside_window_fails_without_calling_twilio(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    result = twilio.send(_msg(last_inbound_at=NOW - timedelta(days=3), whatsapp_template=None))
    assert result.status == "failed" and result.error_code == "no_template"
    assert httpserver.log == []


def test_63016_is_answered_with_the_template_not_a_blind_retry(
    httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]
) -> None:
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        error(63016, "Failed to send freeform message because you are outside the allowed window. Please use a Template."), status=400
    )
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(
        resource("SM" + "c" * 32, f"whatsapp:{LEAD}", "Hi Ana, ..."), status=201
    )

    result = twilio.send(_msg())  # we believed the window was open (3 h ago)

    first, second = forms(httpserver)
    assert first["Body"] == _msg().body and "ContentSid" not in first
    assert second["ContentSid"] == TEMPLATE.content_sid and "Body" not in second
    assert json.loads(second["ContentVariables"])["1"] == "Ana"
    assert result.status == "sent" and result.provider_message_id == "SM" + "c" * 32
    assert "whatsapp_window_closed" in result.flags
    assert sleeps == []


def test_63016_without_template_fails_with_the_code(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(error(63016, "Outside the allowed window."), status=400)
    result = twilio.send(_msg(whatsapp_template=None))
    assert result.status == "failed" and result.error_code == "63016"
    assert len(httpserver.log) == 1


def test_whatsapp_from_number_without_service(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM3", f"whatsapp:{LEAD}", "x"), status=201)
    provider = make(httpserver, sleeps, messaging_service_sid=None, whatsapp_from="+14155238886", status_callback_url=None)
    provider.send(_msg())
    assert forms(httpserver) == [{"To": f"whatsapp:{LEAD}", "From": "whatsapp:+14155238886", "Body": _msg().body}]


def test_window_and_variable_helpers() -> None:
    assert inside_window(_msg(last_inbound_at=NOW - timedelta(hours=23, minutes=59)), NOW)
    assert not inside_window(_msg(last_inbound_at=NOW - timedelta(hours=24)), NOW)
    assert not inside_window(_msg(last_inbound_at=None), NOW)
    naive = _msg(sent_at=None, last_inbound_at=(NOW - timedelta(hours=1)).replace(tzinfo=None))
    assert inside_window(naive, NOW)  # naive timestamps are UTC
    values, flags = template_variables(
        WhatsAppTemplate("HX", {"10": "static:x", "2": "custom.plan", "1": "first_name"}), {"first_name": "Ana", "custom": {"plan": "Pro"}}
    )
    assert list(values) == ["1", "2", "10"] and values == {"1": "Ana", "2": "Pro", "10": "x"} and flags == []


# ---------------------------------------------------------------- sms


def test_sms_with_emoji_counts_ucs2_segments_and_cost(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    body = "Hi Ana 👋 " + "a" * 62  # 72 UTF-16 code units: over 70, so two UCS-2 parts
    httpserver.expect_request(MESSAGES, method="POST", headers=AUTH).respond_with_json(resource("SM4", LEAD, body), status=201)

    result = twilio.send(_sms(body=body))

    assert forms(httpserver) == [{"To": LEAD, "MessagingServiceSid": SERVICE, "Body": body, "StatusCallback": CALLBACK}]
    assert result.segments == 2
    assert result.cost_usd == pytest.approx(2 * 0.0079)
    assert result.flags == ["sms_ucs2"]


def test_sms_rotates_through_the_number_pool(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM5", LEAD, "x"), status=201)
    pool = ["+15550000001", "+15550000002", "+15550000003"]
    provider = make(httpserver, sleeps, sms_from_numbers=pool)

    results = [provider.send(_sms(i)) for i in range(4)]

    sent = forms(httpserver)
    assert [f["From"] for f in sent] == [*pool, pool[0]]
    assert all("MessagingServiceSid" not in f for f in sent)
    assert [r.segments for r in results] == [1] * 4
    assert results[0].cost_usd == pytest.approx(0.0079)


def test_each_number_is_paced_on_its_own(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM6", LEAD, "x"), status=201)
    single = make(httpserver, sleeps, sms_from_numbers=["+15550000001"], sms_per_second_per_number=20)
    started = time.monotonic()
    for i in range(3):
        single.send(_sms(i))
    assert time.monotonic() - started >= 0.09  # 3 sends on one number at 20/s: two 0.05 s waits


def test_21610_marks_the_lead_opted_out(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        error(21610, "Attempt to send to unsubscribed recipient"), status=400
    )
    result = twilio.send(_sms())
    assert result.status == "failed"
    assert result.error_code == "21610"
    assert result.error_message == "Attempt to send to unsubscribed recipient"
    assert result.lead_status == "opted_out"
    assert result.segments == 1 and result.cost_usd == 0
    assert len(httpserver.log) == 1 and sleeps == []


def test_21211_marks_the_lead_invalid(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        error(21211, "The 'To' number +1555 is not a valid phone number."), status=400
    )
    result = twilio.send(_sms(to="+1555"))
    assert (result.status, result.error_code, result.lead_status) == ("failed", "21211", "invalid")
    assert result.error_message == "The 'To' number +1555 is not a valid phone number."


def test_other_4xx_keeps_twilio_code_and_message(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(
        error(21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +88212345"), status=400
    )
    result = twilio.send(_sms(to="+88212345"))
    assert result.error_code == "21408" and result.lead_status is None
    assert result.error_message.startswith("Permission to send an SMS")
    assert len(httpserver.log) == 1 and sleeps == []


def test_bad_credentials_raise(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(error(20003, "Authenticate", status=401), status=401)
    with pytest.raises(ProviderError) as err:
        twilio.send(_sms())
    assert err.value.code == "20003" and err.value.status == 401


def test_429_then_success_is_retried_without_a_lookup(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(error(20429, "Too Many Requests", 429), status=429)
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(resource("SM7", LEAD, "x"), status=201)

    result = twilio.send(_sms())

    assert result.status == "sent" and result.provider_message_id == "SM7"
    assert [req.method for req, _ in httpserver.log] == ["POST", "POST"]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5
    assert forms(httpserver)[0] == forms(httpserver)[1]


def test_500_checks_twilio_before_posting_again(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(error(20500, "Internal Server Error", 500), status=500)
    httpserver.expect_ordered_request(MESSAGES, method="GET", query_string={"To": LEAD, "PageSize": "50"}).respond_with_json(page([]))
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(resource("SM8", LEAD, "x"), status=201)

    result = twilio.send(_sms())

    assert [req.method for req, _ in httpserver.log] == ["POST", "GET", "POST"]
    assert result.provider_message_id == "SM8"
    httpserver.check_assertions()


def test_502_after_twilio_accepted_does_not_send_twice(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    body = _sms().body
    httpserver.expect_ordered_request(MESSAGES, method="POST").respond_with_json(error(20502, "Bad Gateway", 502), status=502)
    httpserver.expect_ordered_request(MESSAGES, method="GET").respond_with_json(
        page([resource("SM" + "d" * 32, LEAD, body, status="queued", date_created=NOW + timedelta(seconds=1))])
    )

    result = twilio.send(_sms())

    assert [req.method for req, _ in httpserver.log] == ["POST", "GET"]
    assert result.status == "sent" and result.provider_message_id == "SM" + "d" * 32 and result.segments == 1


def test_persistent_5xx_raises_provider_error(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(error(20503, "Service Unavailable", 503), status=503)
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(page([]))
    with pytest.raises(ProviderError) as err:
        twilio.send(_sms())
    assert err.value.status == 503
    assert sum(req.method == "POST" for req, _ in httpserver.log) == 5
    assert len(sleeps) == 4


# ---------------------------------------------------------------- lookup


def test_lookup_matches_recipient_time_and_body(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    body = _sms().body
    httpserver.expect_request(MESSAGES, method="GET", headers=AUTH, query_string={"To": LEAD, "PageSize": "50"}).respond_with_json(
        page(
            [
                resource("SMnewer", LEAD, "Another campaign entirely", date_created=NOW + timedelta(minutes=2)),
                resource("SMinbound", LEAD, body, direction="inbound", date_created=NOW),
                resource("SMours", LEAD, body, status="delivered", date_created=NOW + timedelta(seconds=2)),
                resource("SMold", LEAD, body, date_created=NOW - timedelta(days=2)),
            ]
        )
    )
    found = twilio.lookup(_sms())
    assert found is not None
    assert (found.provider_message_id, found.status, found.segments) == ("SMours", "sent", 1)


def test_lookup_finds_a_template_by_its_values(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="GET", query_string={"To": f"whatsapp:{LEAD}", "PageSize": "50"}).respond_with_json(
        page([resource("SMtpl", f"whatsapp:{LEAD}", "Hi Ana, Sara from the team here: how is Acme doing in Lisbon?")])
    )
    found = twilio.lookup(_msg(last_inbound_at=None))
    assert found is not None and found.provider_message_id == "SMtpl"


def test_lookup_returns_none_when_nothing_matches(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(page([resource("SMx", LEAD, "something else")]))
    assert twilio.lookup(_sms()) is None


def test_lookup_is_unknown_when_twilio_cannot_be_asked(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    httpserver.expect_request(MESSAGES, method="GET").respond_with_json(error(20003, "Authenticate", 401), status=401)
    assert twilio.lookup(_sms()) is None


# ---------------------------------------------------------------- events


def _fetch_path(sid: str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"


def test_poll_events_turns_statuses_into_stable_events(httpserver: HTTPServer, twilio: TwilioMessaging) -> None:
    t0 = NOW
    statuses = {
        "SMdelivered": ("delivered", t0 + timedelta(seconds=5), None),
        "SMread": ("read", t0 + timedelta(minutes=3), None),
        "SMfailed": ("undelivered", t0 + timedelta(seconds=9), 30007),
        "SMqueued": ("queued", t0, None),
        "SMlate": ("delivered", t0 + timedelta(days=2), None),
    }
    for sid, (status, updated, code) in statuses.items():
        httpserver.expect_request(_fetch_path(sid), method="GET", headers=AUTH).respond_with_json(
            resource(
                sid,
                LEAD,
                "x",
                status=status,
                date_sent=format_datetime(t0 + timedelta(seconds=1)),
                date_updated=format_datetime(updated),
                error_code=code,
                error_message="Carrier violation" if code else None,
            )
        )
    httpserver.expect_request(_fetch_path("SMgone"), method="GET").respond_with_json(
        error(20404, "The requested resource was not found", 404), status=404
    )
    sids = [*statuses, "SMgone"]
    sends = pd.DataFrame(
        {
            "send_id": [f"snd_{i}" for i in range(len(sids))] + ["snd_email", "snd_noid"],
            "campaign_id": "cmp_q2",
            "touch": 1,
            "lead_id": [f"lead_{i}" for i in range(len(sids) + 2)],
            "channel": ["sms", "whatsapp", "sms", "sms", "sms", "sms", "email", "sms"],
            "provider": ["twilio"] * len(sids) + ["resend", "twilio"],
            "provider_message_id": [*sids, "re_123", None],
        }
    )

    events, replies = twilio.poll_events(sends, until=t0 + timedelta(hours=1))

    assert list(events.columns) == EVENT_COLUMNS and list(replies.columns) == REPLY_COLUMNS and replies.empty
    got = sorted(zip(events["send_id"], events["event_type"], strict=True))
    assert got == [
        ("snd_0", "delivered"),
        ("snd_0", "sent"),
        ("snd_1", "delivered"),
        ("snd_1", "read"),
        ("snd_1", "sent"),
        ("snd_2", "sent"),
        ("snd_2", "undelivered"),
        ("snd_4", "sent"),  # delivered after `until`: only the send is reported so far
    ]
    assert events["event_id"].is_unique
    assert set(events["provider"]) == {"twilio"}
    read = events[events["event_type"] == "read"].iloc[0]
    assert read["channel"] == "whatsapp" and read["lead_id"] == "lead_1"
    assert read["occurred_at"] == datetime(2026, 3, 2, 9, 3)  # naive UTC
    sent = events[(events["send_id"] == "snd_0") & (events["event_type"] == "sent")].iloc[0]
    assert sent["occurred_at"] == datetime(2026, 3, 2, 9, 0, 1)
    undelivered = json.loads(events[events["event_type"] == "undelivered"].iloc[0]["detail"])
    assert undelivered["error_code"] == 30007 and undelivered["sid"] == "SMfailed"
    assert not any(req.path.endswith("re_123.json") for req, _ in httpserver.log)

    again, _ = twilio.poll_events(sends, until=t0 + timedelta(hours=1))
    assert sorted(again["event_id"]) == sorted(events["event_id"])
    # The frame is ready for the delivery_events table once stamped.
    validate("delivery_events", events.assign(ingested_at=datetime(2026, 3, 2, 10, 0)))


def test_poll_events_with_no_sends(twilio: TwilioMessaging) -> None:
    events, replies = twilio.poll_events(pd.DataFrame(columns=["provider", "provider_message_id"]), NOW)
    assert events.empty and replies.empty and list(events.columns) == EVENT_COLUMNS


def test_lookup_retries_a_rate_limited_list(httpserver: HTTPServer, twilio: TwilioMessaging, sleeps: list[float]) -> None:
    # List pages fail differently in the SDK (a bare TwilioException holding the response).
    httpserver.expect_ordered_request(MESSAGES, method="GET").respond_with_json(error(20429, "Too Many Requests", 429), status=429)
    httpserver.expect_ordered_request(MESSAGES, method="GET").respond_with_json(page([resource("SMok", LEAD, _sms().body)]))
    found = twilio.lookup(_sms())
    assert found is not None and found.provider_message_id == "SMok"
    assert len(sleeps) == 1


def test_concurrent_sms_sends_spread_over_the_pool(httpserver: HTTPServer, sleeps: list[float]) -> None:
    httpserver.expect_request(MESSAGES, method="POST").respond_with_json(resource("SM9", LEAD, "x"), status=201)
    pool = ["+15550000001", "+15550000002"]
    provider = make(httpserver, sleeps, sms_from_numbers=pool, max_concurrency=4)
    messages = [_sms(i) for i in range(8)]

    results = map_concurrently(provider.send, messages, max_workers=provider.max_concurrency)

    assert [r.send_id for r in results] == [m.send_id for m in messages]
    senders = [f["From"] for f in forms(httpserver)]
    assert sorted(senders) == sorted(pool * 4)


def test_a_tapped_quick_reply_button_is_a_reply_with_its_title() -> None:
    from outbound_pipeline.providers import twilio_payloads

    record = {"payload": {"MessageSid": "SM" + "e" * 32, "From": f"whatsapp:{LEAD}", "To": "whatsapp:+15550001111", "Body": "",
                          "ButtonText": "Track it", "ButtonPayload": "track", "MessageType": "button"},
              "received_at": NOW}
    reply = twilio_payloads.inbound_reply(record)
    assert reply is not None and reply["body"] == "Track it" and reply["channel"] == "whatsapp" and reply["from_address"] == LEAD
