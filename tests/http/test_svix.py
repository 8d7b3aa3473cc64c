"""Svix signatures: genuine, fresh deliveries pass; anything forged, tampered or stale does not."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from outbound_pipeline.http import svix

SECRET = "whsec_" + base64.b64encode(b"resend-test-signing-key-32bytes!").decode()
NOW = 1_795_000_000
BODY = b'{"type":"email.delivered","data":{"email_id":"e1"}}'


def svix_signature(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    """The `svix-signature` header a Svix sender computes, signed with the `standardwebhooks` library."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), body.decode())


def _headers(msg_id: str = "msg_1", ts: int = NOW, body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": svix_signature(secret, msg_id, ts, body)}


def test_sign_then_verify_returns_the_message_id() -> None:
    assert svix.verify(SECRET, _headers(), BODY, clock=lambda: NOW) == "msg_1"


def test_known_vector_matches_the_svix_scheme() -> None:
    # Independent computation of HMAC-SHA256 over "{id}.{ts}.{body}" with the decoded key.
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"msg_1.%d." % NOW + BODY, hashlib.sha256).digest()).decode()
    assert svix_signature(SECRET, "msg_1", NOW, BODY) == f"v1,{expected}"


def test_rotated_secrets_any_matching_entry_passes() -> None:
    other = "whsec_" + base64.b64encode(b"an-older-key").decode()
    headers = _headers()
    headers["svix-signature"] = f"{svix_signature(other, 'msg_1', NOW, BODY)} v2,zzz {headers['svix-signature']}"
    assert svix.verify(SECRET, headers, BODY, clock=lambda: NOW) == "msg_1"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda h: h.update({"svix-signature": "v1," + base64.b64encode(b"x" * 32).decode()}), id="forged"),
        pytest.param(lambda h: h.update({"svix-id": "msg_2"}), id="other-id"),
        pytest.param(lambda h: h.pop("svix-signature"), id="missing-signature"),
        pytest.param(lambda h: h.update({"svix-timestamp": "soon"}), id="bad-timestamp"),
        pytest.param(lambda h: h.update({"svix-signature": h["svix-signature"].replace("v1,", "v2,")}), id="wrong-version"),
    ],
)
def test_tampered_headers_are_refused(mutate) -> None:
    headers = _headers()
    mutate(headers)
    with pytest.raises(svix.SvixVerificationError):
        svix.verify(SECRET, headers, BODY, clock=lambda: NOW)


def test_tampered_body_is_refused() -> None:
    with pytest.raises(svix.SvixVerificationError):
        svix.verify(SECRET, _headers(), BODY.replace(b"delivered", b"bounced"), clock=lambda: NOW)


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_timestamps_beyond_five_minutes_are_refused(skew: int) -> None:
    headers = _headers(ts=NOW + skew)
    with pytest.raises(svix.SvixVerificationError, match="tolerance"):
        svix.verify(SECRET, headers, BODY, clock=lambda: NOW)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_five_minutes_pass(skew: int) -> None:
    assert svix.verify(SECRET, _headers(ts=NOW + skew), BODY, clock=lambda: NOW) == "msg_1"


def test_malformed_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        svix.verify("whsec_not base64!", _headers(), BODY, clock=lambda: NOW)
