"""ResendEmail against a local server speaking Resend's wire format (JSON, Bearer auth, Idempotency-Key)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
import resend
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage, ProviderError
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.providers.email_resend import EVENT_COLUMNS, REPLY_COLUMNS, ResendEmail, tag_value

KEY = "re_test_123"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _message(i: int = 1, **overrides: object) -> OutboundMessage:
    fields: dict[str, object] = {
        "send_id": f"snd_{i:04d}",
        "idempotency_key": f"snd_{i:04d}",
        "campaign_id": "q2 launch/EU",
        "touch": 1,
        "lead_id": f"lead_{i}",
        "channel": "email",
        "to": f"ana{i}@example.com",
        "subject": "Your Q2 hiring plan",
        "body": "Hi Ana,\nsaw your post on the Lisbon office.",
        "reply_to": "owner@seller.example",
        "sent_at": NOW,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def provider(httpserver: HTTPServer, sleeps: list[float]) -> ResendEmail:
    return ResendEmail(
        KEY,
        "Sales Team <sales@mail.seller.example>",
        base_url=httpserver.url_for(""),
        unsubscribe_mailto="unsubscribe@seller.example",
        requests_per_second=0,
        sleep=sleeps.append,
        clock=lambda: NOW + timedelta(minutes=5),
    )


def _error(status: int, name: str, message: str) -> dict[str, object]:
    return {"statusCode": status, "message": message, "name": name}


def _bodies(server: HTTPServer) -> list[object]:
    return [json.loads(req.get_data()) for req, _ in server.log]


def test_is_a_channel_provider(provider: ResendEmail) -> None:
    assert isinstance(provider, ChannelProvider)
    assert provider.name == "resend" and provider.channels == ("email",)


def test_send_posts_the_full_email(httpserver: HTTPServer, provider: ResendEmail) -> None:
    httpserver.expect_request(
        "/emails",
        method="POST",
        headers={"Authorization": f"Bearer {KEY}", "Idempotency-Key": "snd_0001", "Content-Type": "application/json"},
    ).respond_with_json({"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"})

    result = provider.send(_message())

    assert result.status == "sent"
    assert result.provider == "resend"
    assert result.provider_message_id == "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
    assert result.flags == ["message_id:<snd_0001@mail.seller.example>"]
    (body,) = _bodies(httpserver)
    assert body == {
        "from": "Sales Team <sales@mail.seller.example>",
        "to": ["ana1@example.com"],
        "subject": "Your Q2 hiring plan",
        "text": "Hi Ana,\nsaw your post on the Lisbon office.",
        "reply_to": ["owner@seller.example"],
        "headers": {
            "Message-ID": "<snd_0001@mail.seller.example>",
            "List-Unsubscribe": "<https://example.invalid/unsubscribe?send_id=snd_0001>, "
            "<mailto:unsubscribe@seller.example?subject=unsubscribe%20snd_0001>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        "tags": [{"name": "campaign_id", "value": "q2_launch_EU"}, {"name": "send_id", "value": "snd_0001"}],
    }


def test_without_mailto_or_reply_to(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/emails", method="POST").respond_with_json({"id": "e1"})
    plain = ResendEmail(KEY, "sales@seller.example", base_url=httpserver.url_for("/"), requests_per_second=0)
    plain.send(_message(reply_to=None))
    (body,) = _bodies(httpserver)
    assert "reply_to" not in body
    assert body["headers"]["List-Unsubscribe"] == "<https://example.invalid/unsubscribe?send_id=snd_0001>"
    assert body["headers"]["Message-ID"] == "<snd_0001@seller.example>"


def test_tag_values_are_sanitized() -> None:
    assert tag_value("Ana's camp 2026/Q2 ✓") == "Ana_s_camp_2026_Q2__"
    assert tag_value("ok-value_1") == "ok-value_1"
    assert tag_value("") == "_"
    assert len(tag_value("x" * 300)) == 256


def test_429_then_success_honours_retry_after(httpserver: HTTPServer, provider: ResendEmail, sleeps: list[float]) -> None:
    httpserver.expect_ordered_request("/emails", method="POST").respond_with_json(
        _error(429, "rate_limit_exceeded", "Too many requests. You can only make 2 requests per second."),
        status=429,
        headers={"retry-after": "1", "ratelimit-limit": "2", "ratelimit-remaining": "0", "ratelimit-reset": "1"},
    )
    httpserver.expect_ordered_request("/emails", method="POST").respond_with_json({"id": "e-after-429"})

    result = provider.send(_message())

    assert result.status == "sent" and result.provider_message_id == "e-after-429"
    assert sleeps == [1.0]
    assert len(httpserver.log) == 2


def test_retry_after_500_reuses_the_idempotency_key(httpserver: HTTPServer, provider: ResendEmail, sleeps: list[float]) -> None:
    httpserver.expect_ordered_request("/emails", method="POST").respond_with_json(
        _error(500, "application_error", "An unexpected error occurred."), status=500
    )
    httpserver.expect_ordered_request("/emails", method="POST").respond_with_json({"id": "e-once"})

    result = provider.send(_message(7))

    assert result.provider_message_id == "e-once"
    keys = [req.headers.get("Idempotency-Key") for req, _ in httpserver.log]
    assert keys == ["snd_0007", "snd_0007"]
    first, second = _bodies(httpserver)
    assert first == second  # byte-identical payload, else Resend would answer 409
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5  # jittered backoff, no Retry-After


def test_validation_error_is_a_failed_send_with_its_name(httpserver: HTTPServer, provider: ResendEmail, sleeps: list[float]) -> None:
    httpserver.expect_request("/emails", method="POST").respond_with_json(
        _error(422, "validation_error", "Invalid `to` field. The email address needs to follow the `email@example.com` format."),
        status=422,
    )
    result = provider.send(_message(to="not-an-address"))
    assert result.status == "failed"
    assert result.error_code == "validation_error"
    assert result.error_message.startswith("Invalid `to` field")
    assert result.provider_message_id is None
    assert len(httpserver.log) == 1 and sleeps == []  # never retried


def test_bad_key_raises_instead_of_failing_the_message(httpserver: HTTPServer, provider: ResendEmail) -> None:
    httpserver.expect_request("/emails").respond_with_json(_error(403, "invalid_api_key", "API key is invalid"), status=403)
    with pytest.raises(ProviderError) as err:
        provider.send(_message())
    assert err.value.code == "invalid_api_key" and err.value.status == 403


def test_persistent_5xx_raises_after_all_attempts(httpserver: HTTPServer, provider: ResendEmail, sleeps: list[float]) -> None:
    httpserver.expect_request("/emails").respond_with_json(_error(503, "application_error", "Service unavailable"), status=503)
    with pytest.raises(ProviderError) as err:
        provider.send(_message())
    assert err.value.status == 503
    assert len(httpserver.log) == 5 and len(sleeps) == 4
    assert {req.headers["Idempotency-Key"] for req, _ in httpserver.log} == {"snd_0001"}


def test_idempotency_conflict_is_reported_as_already_sent(httpserver: HTTPServer, provider: ResendEmail) -> None:
    httpserver.expect_request("/emails").respond_with_json(
        _error(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload."), status=409
    )
    result = provider.send(_message())
    assert result.status == "sent" and result.provider_message_id is None
    assert "idempotency_conflict" in result.flags
    assert len(httpserver.log) == 1


def test_lookup_replays_with_the_same_key(httpserver: HTTPServer, provider: ResendEmail) -> None:
    httpserver.expect_request("/emails", method="POST", headers={"Idempotency-Key": "snd_0003"}).respond_with_json({"id": "original-id"})
    found = provider.lookup(_message(3))
    assert found is not None and found.status == "sent" and found.provider_message_id == "original-id"


def test_lookup_refuses_once_the_key_may_have_expired(httpserver: HTTPServer, provider: ResendEmail) -> None:
    assert provider.lookup(_message(sent_at=NOW - timedelta(hours=30))) is None
    assert httpserver.log == []


def test_lookup_is_unknown_when_resend_keeps_failing(httpserver: HTTPServer, provider: ResendEmail) -> None:
    httpserver.expect_request("/emails").respond_with_json(_error(500, "application_error", "boom"), status=500)
    assert provider.lookup(_message()) is None


def test_poll_events_returns_empty_frames_with_table_columns(provider: ResendEmail) -> None:
    events, replies = provider.poll_events(None, NOW)  # type: ignore[arg-type]
    assert events.empty and replies.empty
    assert list(events.columns) == EVENT_COLUMNS
    assert list(replies.columns) == REPLY_COLUMNS
    assert "event_type" in EVENT_COLUMNS and "ingested_at" not in EVENT_COLUMNS


def test_two_clients_never_use_each_others_key(httpserver: HTTPServer) -> None:
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        httpserver.expect_request("/emails", headers={"Authorization": "Bearer key_a"}).respond_with_json({"id": "a"})
        other.expect_request("/emails", headers={"Authorization": "Bearer key_b"}).respond_with_json({"id": "b"})
        a = ResendEmail("key_a", "a@a.example", base_url=httpserver.url_for(""), requests_per_second=0)
        b = ResendEmail("key_b", "b@b.example", base_url=other.url_for(""), requests_per_second=0)
        results: list[str | None] = []

        def run(p: ResendEmail, i: int) -> None:
            results.append(p.send(_message(i)).provider_message_id)

        threads = [threading.Thread(target=run, args=(a if i % 2 else b, i)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["a"] * 10 + ["b"] * 10
        assert len(httpserver.log) == 10 and len(other.log) == 10
        assert resend.api_key in {"key_a", "key_b"}
    finally:
        other.clear()
        if other.is_running():
            other.stop()


def test_concurrent_sends_keep_order_and_keys(httpserver: HTTPServer, provider: ResendEmail) -> None:
    def answer(request: Request) -> Response:
        return Response(json.dumps({"id": f"id-{request.headers['Idempotency-Key']}"}), content_type="application/json")

    httpserver.expect_request("/emails", method="POST").respond_with_handler(answer)
    messages = [_message(i) for i in range(6)]
    results = map_concurrently(provider.send, messages, max_workers=provider.max_concurrency)
    assert [r.provider_message_id for r in results] == [f"id-{m.idempotency_key}" for m in messages]
