"""The receiver through Starlette's TestClient: verify, land durably, refuse and store nothing."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from outbound_pipeline.engine.landed import to_frames
from outbound_pipeline.http import unsubscribe_tokens
from outbound_pipeline.http.app import create_app
from outbound_pipeline.store import landing

TOKEN = "twilio-auth-token-for-tests"
SECRET = "whsec_" + base64.b64encode(b"resend-webhook-key-for-tests-32b").decode()
UNSUBSCRIBE_SECRET = "unsubscribe-secret-for-tests-0123456789"
NOW = datetime(2026, 11, 23, 17, 5, 0, tzinfo=UTC)
STATUS_URL = "http://testserver/webhooks/twilio/status"
STATUS = {
    "MessageSid": "SM0123",
    "MessageStatus": "delivered",
    "AccountSid": "AC1",
    "From": "+15550000000",
    "To": "+15551230000",
    "ErrorCode": "",
}


def _client(tmp_path: Path, **kwargs) -> TestClient:
    options = {"twilio_auth_token": TOKEN, "resend_webhook_secret": SECRET, "landing_dir": tmp_path, "clock": lambda: NOW,
               "unsubscribe_secret": UNSUBSCRIBE_SECRET, **kwargs}
    return TestClient(create_app(**options))


def _twilio_headers(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def _resend_request(body: dict, msg_id: str = "msg_2Abc", ts: datetime = NOW, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(ts.timestamp())
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(stamp),
        "svix-signature": Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), raw.decode()),
        "content-type": "application/json",
    }
    return raw, headers


def _landed(tmp_path: Path) -> list[dict]:
    return landing.read_since(None, tmp_path)[0]


DELIVERED = {
    "type": "email.delivered",
    "created_at": "2026-11-23T17:04:59.000Z",
    "data": {
        "email_id": "4ef9a417-02e9-4d39-ad75-9611e0fcc33c",
        "to": ["ana@example.com"],
        "tags": {"send_id": "snd_1", "campaign_id": "c1"},
    },
}


# --------------------------------------------------------------------------- Twilio


def test_signed_twilio_status_callback_is_landed(tmp_path: Path) -> None:
    client = _client(tmp_path)
    resp = client.post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(STATUS_URL, STATUS))
    assert resp.status_code == 200
    [record] = _landed(tmp_path)
    assert record["source"] == "twilio_status"
    assert record["landing_id"] == "SM0123:delivered"
    assert record["payload"] == STATUS
    assert record["received_at"] == NOW.isoformat()
    events, _ = to_frames([record])
    assert events["event_type"].tolist() == ["delivered"] and events["channel"].tolist() == ["sms"]


def test_query_string_is_part_of_the_signed_url_and_kept(tmp_path: Path) -> None:
    client = _client(tmp_path)
    url = STATUS_URL + "?send_id=snd_42"
    resp = client.post("/webhooks/twilio/status?send_id=snd_42", data=STATUS, headers=_twilio_headers(url, STATUS))
    assert resp.status_code == 200
    [record] = _landed(tmp_path)
    assert record["query"] == {"send_id": "snd_42"}
    assert to_frames([record])[0]["send_id"].tolist() == ["snd_42"]
    # Same signature, different query: the URL no longer matches what was signed.
    resp = client.post("/webhooks/twilio/status?send_id=snd_99", data=STATUS, headers=_twilio_headers(url, STATUS))
    assert resp.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(_twilio_headers(STATUS_URL, STATUS, token="someone-elses-token"), id="wrong-token"),
        pytest.param(_twilio_headers(STATUS_URL, {**STATUS, "MessageStatus": "failed"}), id="tampered-params"),
        pytest.param(_twilio_headers("http://testserver/webhooks/twilio/inbound", STATUS), id="other-url"),
        pytest.param({"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, id="garbage"),
        pytest.param({}, id="missing"),
    ],
)
def test_forged_twilio_callbacks_get_403_and_land_nothing(tmp_path: Path, headers: dict[str, str]) -> None:
    resp = _client(tmp_path).post("/webhooks/twilio/status", data=STATUS, headers=headers)
    assert resp.status_code == 403
    assert _landed(tmp_path) == [] and landing.landed_files(tmp_path) == []


def test_unconfigured_twilio_token_refuses_everything(tmp_path: Path) -> None:
    client = _client(tmp_path, twilio_auth_token=None)
    resp = client.post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(STATUS_URL, STATUS))
    assert resp.status_code == 403
    assert _landed(tmp_path) == []


def test_behind_a_proxy_the_public_url_is_what_is_verified(tmp_path: Path) -> None:
    client = _client(tmp_path, public_base_url="https://hooks.example.com/")
    public = "https://hooks.example.com/webhooks/twilio/status"
    assert client.post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(STATUS_URL, STATUS)).status_code == 403
    assert client.post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(public, STATUS)).status_code == 200
    assert len(_landed(tmp_path)) == 1


def test_inbound_message_answers_empty_twiml_and_lands_a_reply(tmp_path: Path) -> None:
    params = {
        "MessageSid": "SMin77",
        "From": "whatsapp:+34600111222",
        "To": "whatsapp:+15550000000",
        "Body": "Interesado, ¿hablamos el martes?",
        "NumMedia": "0",
    }
    url = "http://testserver/webhooks/twilio/inbound"
    resp = _client(tmp_path).post("/webhooks/twilio/inbound", data=params, headers=_twilio_headers(url, params))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    assert resp.text.endswith("<Response/>")
    [record] = _landed(tmp_path)
    assert (record["source"], record["landing_id"]) == ("twilio_inbound", "SMin77")
    _, replies = to_frames([record])
    assert replies[["reply_id", "from_address", "channel", "intent"]].values.tolist() == [["SMin77", "+34600111222", "whatsapp", "unknown"]]
    assert replies["body"].iloc[0] == params["Body"]


def test_signed_callback_without_message_sid_is_a_bad_request(tmp_path: Path) -> None:
    params = {"CallSid": "CA1", "CallStatus": "completed"}
    resp = _client(tmp_path).post("/webhooks/twilio/status", data=params, headers=_twilio_headers(STATUS_URL, params))
    assert resp.status_code == 400
    assert _landed(tmp_path) == []


# --------------------------------------------------------------------------- Resend


def test_signed_resend_webhook_is_landed(tmp_path: Path) -> None:
    raw, headers = _resend_request(DELIVERED)
    resp = _client(tmp_path).post("/webhooks/resend", content=raw, headers=headers)
    assert resp.status_code == 200
    [record] = _landed(tmp_path)
    assert (record["source"], record["landing_id"]) == ("resend", "msg_2Abc")
    assert record["payload"] == DELIVERED
    events, _ = to_frames([record])
    assert events[["event_type", "send_id", "channel", "provider"]].values.tolist() == [["delivered", "snd_1", "email", "resend"]]


def test_bad_svix_signature_gets_403(tmp_path: Path) -> None:
    other = "whsec_" + base64.b64encode(b"not-our-key").decode()
    raw, headers = _resend_request(DELIVERED, secret=other)
    assert _client(tmp_path).post("/webhooks/resend", content=raw, headers=headers).status_code == 403
    raw, headers = _resend_request(DELIVERED)
    tampered = raw.replace(b"delivered", b"complained")
    assert _client(tmp_path).post("/webhooks/resend", content=tampered, headers=headers).status_code == 403
    assert _landed(tmp_path) == []


@pytest.mark.parametrize("age", [timedelta(minutes=5, seconds=1), timedelta(hours=2), -timedelta(minutes=6)])
def test_replayed_or_future_resend_webhook_gets_403(tmp_path: Path, age: timedelta) -> None:
    raw, headers = _resend_request(DELIVERED, ts=NOW - age)
    assert _client(tmp_path).post("/webhooks/resend", content=raw, headers=headers).status_code == 403
    assert _landed(tmp_path) == []


def test_unconfigured_or_malformed_resend_secret_refuses(tmp_path: Path) -> None:
    raw, headers = _resend_request(DELIVERED)
    assert _client(tmp_path, resend_webhook_secret=None).post("/webhooks/resend", content=raw, headers=headers).status_code == 403
    assert _client(tmp_path, resend_webhook_secret="whsec_%%%").post("/webhooks/resend", content=raw, headers=headers).status_code == 403
    assert _landed(tmp_path) == []


def test_signed_but_not_json_is_a_bad_request(tmp_path: Path) -> None:
    raw = b"not json"
    stamp = int(NOW.timestamp())
    headers = {"svix-id": "m", "svix-timestamp": str(stamp), "svix-signature": Webhook(SECRET).sign("m", datetime.fromtimestamp(stamp, UTC), raw.decode())}
    assert _client(tmp_path).post("/webhooks/resend", content=raw, headers=headers).status_code == 400
    assert _landed(tmp_path) == []


def test_a_redelivered_webhook_lands_twice_and_ingests_once(tmp_path: Path) -> None:
    client = _client(tmp_path)
    raw, headers = _resend_request(DELIVERED)
    for _ in range(2):
        assert client.post("/webhooks/resend", content=raw, headers=headers).status_code == 200
        assert client.post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(STATUS_URL, STATUS)).status_code == 200
    records = _landed(tmp_path)
    assert len(records) == 4  # the landing area keeps every delivery...
    events, _ = to_frames(records)
    assert len(events) == 2 and events["event_id"].is_unique  # ...ingestion keeps one row per event_id


def test_oversized_bodies_are_refused(tmp_path: Path) -> None:
    raw, headers = _resend_request({**DELIVERED, "pad": "x" * 300_000})
    assert _client(tmp_path).post("/webhooks/resend", content=raw, headers=headers).status_code == 413
    assert _landed(tmp_path) == []


# --------------------------------------------------------------------------- unsubscribe, health, failures


def _unsubscribe_url(send_id: str, secret: str = UNSUBSCRIBE_SECRET) -> str:
    return unsubscribe_tokens.link("/unsubscribe?send_id={send_id}", secret, send_id)


def test_one_click_unsubscribe_lands_an_opted_out_record(tmp_path: Path) -> None:
    url = _unsubscribe_url("snd_77")
    assert "send_id=snd_77&token=" in url
    resp = _client(tmp_path).post(url, data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    [record] = _landed(tmp_path)
    assert record["source"] == "unsubscribe" and record["payload"] == {"send_id": "snd_77", "channel": "email", "one_click": True}
    events, _ = to_frames([record])
    assert events[["event_type", "send_id", "channel"]].values.tolist() == [["opted_out", "snd_77", "email"]]


def test_unsubscribe_get_shows_a_form_posting_to_the_same_signed_url_and_lands_nothing(tmp_path: Path) -> None:
    client = _client(tmp_path)
    url = _unsubscribe_url("snd_77")
    resp = client.get(url)
    assert resp.status_code == 200
    assert 'method="post"' in resp.text and f'action="{url.replace("&", "&amp;")}"' in resp.text
    assert _landed(tmp_path) == []
    # The form's button posts back to that URL (a browser sends the hidden field as the body).
    assert client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert [r["payload"]["send_id"] for r in _landed(tmp_path)] == ["snd_77"]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("?send_id=snd_77", id="no-token"),
        pytest.param("?send_id=snd_77&token=", id="empty-token"),
        pytest.param("?send_id=snd_77&token=" + "A" * 43, id="wrong-token"),
        pytest.param("?send_id=snd_77&token=" + unsubscribe_tokens.token(UNSUBSCRIBE_SECRET, "snd_78"), id="token-of-another-send"),
        pytest.param("?send_id=snd_77&token=" + unsubscribe_tokens.token("someone-elses-secret-0123", "snd_77"), id="other-secret"),
        pytest.param("?send_id=snd_77&token=" + unsubscribe_tokens.token(UNSUBSCRIBE_SECRET, "snd_77")[:-1], id="truncated"),
        pytest.param("?send_id=snd_77&token=%00%FF" + "A" * 41, id="garbage-bytes"),
    ],
)
def test_a_forged_unsubscribe_gets_403_and_lands_nothing(tmp_path: Path, query: str) -> None:
    client = _client(tmp_path)
    assert client.post(f"/unsubscribe{query}", data={"List-Unsubscribe": "One-Click"}).status_code == 403
    assert client.get(f"/unsubscribe{query}").status_code == 403
    assert _landed(tmp_path) == [] and landing.landed_files(tmp_path) == []


@pytest.mark.parametrize("query", ["", "?send_id=", "?send_id=%3Cscript%3E"])
def test_unsubscribe_without_a_valid_send_id_is_refused(tmp_path: Path, query: str) -> None:
    client = _client(tmp_path)
    assert client.post(f"/unsubscribe{query}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert client.get(f"/unsubscribe{query}").status_code == 400
    assert _landed(tmp_path) == []


def test_healthz_reports_configuration_without_secrets(tmp_path: Path) -> None:
    resp = _client(tmp_path, resend_webhook_secret=None).get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"ok": True, "twilio": True, "resend": False}
    assert TOKEN not in resp.text


def test_when_landing_fails_the_provider_gets_503_to_retry(tmp_path: Path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(landing, "append_many", broken)
    resp = _client(tmp_path).post("/webhooks/twilio/status", data=STATUS, headers=_twilio_headers(STATUS_URL, STATUS))
    assert resp.status_code == 503


def test_secrets_and_signatures_never_reach_the_logs(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = _client(tmp_path)
    headers = _twilio_headers(STATUS_URL, STATUS)
    client.post("/webhooks/twilio/status", data=STATUS, headers=headers)
    client.post("/webhooks/twilio/status", data=STATUS, headers={"X-Twilio-Signature": "forged"})
    raw, svix_headers = _resend_request(DELIVERED)
    client.post("/webhooks/resend", content=raw, headers=svix_headers)
    client.post("/webhooks/resend", content=raw, headers={**svix_headers, "svix-signature": "v1,forged"})
    text = caplog.text
    assert "landed twilio_status" in text and "rejected" in text
    for secret in (TOKEN, SECRET, SECRET.removeprefix("whsec_"), headers["X-Twilio-Signature"], svix_headers["svix-signature"]):
        assert secret not in text
