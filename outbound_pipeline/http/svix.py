"""Svix webhook signatures (what Resend uses), checked with the `standardwebhooks` library.

Signed content is `{svix-id}.{svix-timestamp}.{raw_body}` under the base64 key after
`whsec_`; the `svix-signature` header carries space-separated `v1,<sig>` entries (several
during secret rotation). Freshness is judged on the receiver's own clock: timestamps more
than `tolerance_s` away are refused so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

TOLERANCE_S = 300


class SvixVerificationError(Exception):
    """The request is not a genuine, fresh Svix delivery. The message never holds the secret."""


def webhook(secret: str) -> Webhook:
    """The signer for a `whsec_...` secret; ValueError when the secret is not usable."""
    try:
        return Webhook(secret)
    except (ValueError, EmptyWebhookSecretError) as exc:
        raise ValueError("webhook secret is not valid base64 after 'whsec_'") from exc


def verify(secret: str, headers: Mapping[str, str], body: bytes | str, *, clock: Callable[[], float] = time.time,
           tolerance_s: int = TOLERANCE_S) -> str:
    """Check a delivery's signature and freshness; return its `svix-id` or raise SvixVerificationError.

    `headers` is any mapping (Starlette headers are case-insensitive; plain dicts should use the lower-case
    names). The `webhook-*` names of the Standard Webhooks spec are accepted too.
    """
    signer = webhook(secret)
    msg_id = headers.get("svix-id") or headers.get("webhook-id")
    timestamp = headers.get("svix-timestamp") or headers.get("webhook-timestamp")
    header = headers.get("svix-signature") or headers.get("webhook-signature")
    if not msg_id or not timestamp or not header:
        raise SvixVerificationError("missing svix headers")
    try:
        sent_at = int(timestamp)
    except ValueError as exc:
        raise SvixVerificationError("bad svix-timestamp") from exc
    if abs(clock() - sent_at) > tolerance_s:
        raise SvixVerificationError("svix-timestamp outside tolerance")
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise SvixVerificationError("body is not UTF-8") from exc
    expected = signer.sign(msg_id, datetime.fromtimestamp(sent_at, UTC), text).encode()
    if any(hmac.compare_digest(entry.encode(), expected) for entry in header.split()):
        return msg_id
    raise SvixVerificationError("no matching v1 signature")
