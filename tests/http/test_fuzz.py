"""Fuzzing: payload parsers never raise on arbitrary dicts, nothing accepted is lost, and the app never answers 5xx."""

from __future__ import annotations

import base64
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from outbound_pipeline.engine.landed import to_frames
from outbound_pipeline.http.app import create_app
from outbound_pipeline.providers import resend_payloads, twilio_payloads
from outbound_pipeline.store import landing

TOKEN = "twilio-auth-token-for-fuzzing"
SECRET = "whsec_" + base64.b64encode(b"resend-webhook-key-for-fuzzing-3").decode()
NOW = datetime(2026, 11, 23, 17, 5, 0, tzinfo=UTC)

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30), st.text(st.characters(codec=None, categories=['Cs', 'Ll']), max_size=4),
                    st.sampled_from(["delivered", "read", "failed", "sent", "email.delivered", "email.bounced", "email.opened",
                                     "whatsapp:+34600111222", "2026-11-23T17:04:59Z", "not a date", "99999999999999999999999", "-3", "1", "1e400"]))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                           max_leaves=20)
KEYS = ["MessageSid", "SmsSid", "MessageStatus", "SmsStatus", "To", "From", "Body", "ErrorCode", "type", "created_at", "data",
        "email_id", "tags", "send_id", "campaign_id", "touch", "lead_id", "bounce", "click", "channel", "one_click"]
payloads = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), json_values, max_size=8)
resend_like = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(sorted(resend_payloads.EVENT_TYPES)), st.text(max_size=12)),
     "data": st.fixed_dictionaries({"email_id": json_values}, optional={"tags": json_values, "bounce": json_values, "click": json_values}),
     },
    optional={"created_at": json_values})
records = st.builds(
    lambda source, landing_id, payload, query, received_at: {"source": source, "landing_id": landing_id, "payload": payload,
                                                              "query": query, "received_at": received_at},
    st.sampled_from(landing.SOURCES), st.text(min_size=1, max_size=12), st.one_of(payloads, resend_like),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
    st.just(NOW.isoformat()),  # stamped by the landing area itself, never by the sender
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _row_or_skip(parser, record: dict[str, Any]) -> None:
    """A parser answers a row (a dict) or None (a deliberate skip): never an exception."""
    result = parser(record)
    assert result is None or isinstance(result, dict)


@FUZZ
@given(records)
def test_payload_parsers_never_raise(record: dict[str, Any]) -> None:
    for parser in (twilio_payloads.status_event, twilio_payloads.inbound_reply, resend_payloads.delivery_event):
        _row_or_skip(parser, record)
    resend_payloads.received_email_id(record["payload"])
    resend_payloads.has_content(record["payload"])


@FUZZ
@given(st.lists(records, max_size=6))
def test_every_landed_record_becomes_a_row_or_a_skip(batch: list[dict[str, Any]]) -> None:
    events, replies = to_frames(batch)
    parsers = {"twilio_status": twilio_payloads.status_event, "resend": resend_payloads.delivery_event,
               "twilio_inbound": twilio_payloads.inbound_reply}
    expected_events, expected_replies = set(), set()
    for record in batch:
        parser = parsers.get(record["source"])
        row = parser(record) if parser else None
        if row is not None:
            (expected_replies if record["source"] == "twilio_inbound" else expected_events).add(row.get("reply_id") or row.get("event_id"))
    assert expected_events <= set(events["event_id"])  # nothing a parser kept went missing between parse and rows
    assert expected_replies <= set(replies["reply_id"])


@FUZZ
@given(st.one_of(resend_like, payloads))
def test_signed_resend_webhooks_of_any_shape_land_or_are_refused_never_5xx(payload: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = TestClient(create_app(TOKEN, SECRET, Path(tmp), clock=lambda: NOW, unsubscribe_secret="fuzz-unsubscribe-secret-0123"))
        raw = json.dumps(payload).encode()
        stamp = int(NOW.timestamp())
        headers = {"svix-id": "m1", "svix-timestamp": str(stamp),
                   "svix-signature": Webhook(SECRET).sign("m1", datetime.fromtimestamp(stamp, UTC), raw.decode())}
        resp = client.post("/webhooks/resend", content=raw, headers=headers)
        assert resp.status_code == 200
        [record] = landing.read_since(None, Path(tmp))[0]
        assert json.dumps(record["payload"], sort_keys=True) == json.dumps(payload, sort_keys=True)  # NaN != NaN, but its text is
        to_frames([record])  # and it can be shaped into rows (or skipped) afterwards


@FUZZ
@given(st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=6))
def test_signed_twilio_callbacks_of_any_fields_answer_2xx_or_4xx(params: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = TestClient(create_app(TOKEN, SECRET, Path(tmp), clock=lambda: NOW, unsubscribe_secret="fuzz-unsubscribe-secret-0123"))
        for route in ("status", "inbound"):
            url = f"http://testserver/webhooks/twilio/{route}"
            signature = RequestValidator(TOKEN).compute_signature(url, params)
            resp = client.post(f"/webhooks/twilio/{route}", data=params, headers={"X-Twilio-Signature": signature})
            assert 200 <= resp.status_code < 500, resp.status_code
        to_frames(landing.read_since(None, Path(tmp))[0])


header_names = st.sampled_from(["x-twilio-signature", "x-twilio-webhooks-signature-settings", "svix-id", "svix-timestamp",
                                "svix-signature", "webhook-id", "content-type", "content-length", "host", "x-other"])
header_values = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.sampled_from(["/webhooks/twilio/status", "/webhooks/twilio/inbound", "/webhooks/resend", "/unsubscribe", "/healthz", "/x"]),
    query=st.text(max_size=40),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.binary(max_size=300),
)
def test_arbitrary_requests_never_get_a_5xx(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        client = TestClient(create_app(TOKEN, SECRET, Path(tmp), clock=lambda: NOW, unsubscribe_secret="fuzz-unsubscribe-secret-0123"))
        headers = {k: v for k, v in headers.items() if k != "content-length" or v.isdigit()}
        resp = client.request(method, f"{path}?{quote(query, safe='=&')}", content=body, headers={k: v.encode("latin-1") for k, v in headers.items()})
        assert resp.status_code < 500, (resp.status_code, resp.text)


def test_found_by_fuzzing_a_lone_surrogate_id_and_an_absurd_touch_tag_still_make_a_row(tmp_path: Path) -> None:
    client = TestClient(create_app(TOKEN, SECRET, tmp_path, clock=lambda: NOW, unsubscribe_secret="fuzz-unsubscribe-secret-0123"))
    raw = b'{"type":"email.delivered","data":{"email_id":"\\ud800x","tags":{"touch":"99999999999999999999999","send_id":"snd_1"}}}'
    stamp = int(NOW.timestamp())
    headers = {"svix-id": "m1", "svix-timestamp": str(stamp),
               "svix-signature": Webhook(SECRET).sign("m1", datetime.fromtimestamp(stamp, UTC), raw.decode())}
    assert client.post("/webhooks/resend", content=raw, headers=headers).status_code == 200
    events, _ = to_frames(landing.read_since(None, tmp_path)[0])
    assert events["send_id"].tolist() == ["snd_1"] and events["touch"].isna().all()
    assert events["event_id"].tolist() == [resend_payloads.event_id("\ud800x", "delivered")]
