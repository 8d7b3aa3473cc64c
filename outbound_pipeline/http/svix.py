"""Svix webhook signatures (what Resend uses), verified here without the svix SDK.

Signed content is `{svix-id}.{svix-timestamp}.{raw_body}`; the key is the
base64-decoded secret after `whsec_`; the signature is base64 HMAC-SHA256 and
the `svix-signature` header carries space-separated `v1,<sig>` entries (several
during secret rotation). Timestamps more than `tolerance_s` away from now are
refused so a captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable

TOLERANCE_S = 300
SECRET_PREFIX = "whsec_"


class SvixVerificationError(Exception):
    """The request is not a genuine, fresh Svix delivery. The message never holds the secret."""


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from exc


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes | str) -> str:
    """The `svix-signature` header value (`v1,<base64>`) for a message; for tests and local tools."""
    content = f"{msg_id}.{timestamp}.".encode() + _as_bytes(body)
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secret: str,
    headers: dict[str, str] | object,
    body: bytes | str,
    *,
    clock: Callable[[], float] = time.time,
    tolerance_s: int = TOLERANCE_S,
) -> str:
    """Check a delivery's signature and freshness; return its `svix-id` or raise SvixVerificationError.

    `headers` is any mapping with `.get` (Starlette headers are case-insensitive;
    plain dicts should use the lower-case names).
    """
    get = headers.get  # type: ignore[attr-defined]
    msg_id = get("svix-id") or get("webhook-id")
    timestamp = get("svix-timestamp") or get("webhook-timestamp")
    header = get("svix-signature") or get("webhook-signature")
    if not msg_id or not timestamp or not header:
        raise SvixVerificationError("missing svix headers")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SvixVerificationError("bad svix-timestamp") from exc
    now = clock()
    if abs(now - ts) > tolerance_s:
        raise SvixVerificationError("svix-timestamp outside tolerance")
    expected = sign(secret, msg_id, timestamp, body).split(",", 1)[1].encode()
    for entry in header.split():
        version, _, signature = entry.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return msg_id
    raise SvixVerificationError("no matching v1 signature")
