"""Resend webhook payloads (Svix-delivered `email.*` events) as delivery_events and replies rows.

An event's id is the email id and the event kind, so repeated opens collapse into one row.
An `email.received` webhook announces an inbound email with its metadata only; the reply row
is built from it and the received email in full (`GET /emails/receiving/{id}`), shaped like
one read from the IMAP mailbox: its id derives from the Message-ID (the same email reaching
us both ways is stored once), `thread_refs` come from In-Reply-To/References, and an
`Auto-Submitted` header marks an auto-reply.
"""

from __future__ import annotations

import json
from email.utils import parseaddr
from typing import Any

import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.inbox_imap import html_to_text, new_text, refs_from
from outbound_pipeline.providers.wire import detail_json, int_or_none, naive_utc

EVENT_TYPES = {
    "email.sent": "sent",
    "email.delivered": "delivered",
    "email.delivery_delayed": "delivery_delayed",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.bounced": "bounced",
    "email.complained": "complained",
    "email.failed": "failed",
}
RECEIVED = "email.received"


def event_id(email_id: str, event_type: str) -> str:
    """The delivery_events id of a Resend event: one row per email and kind (repeat opens collapse)."""
    return stable_id("evt", encodable(email_id), event_type)


def encodable(value: object) -> str:
    """`value` as text that encodes as UTF-8: JSON may carry lone surrogates (`"\\ud800"`), kept as escapes."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def storable_time(value: object) -> pd.Timestamp | None:
    """`created_at` as a naive UTC timestamp the tables can hold (years 1678-2261), else None (then the landing time is used)."""
    ts = naive_utc(value)
    if ts is None or pd.isna(ts) or not _STORABLE_FROM <= ts < _STORABLE_UNTIL:
        return None
    return ts


_STORABLE_FROM, _STORABLE_UNTIL = pd.Timestamp("1678-01-01"), pd.Timestamp("2262-01-01")


def touch_or_none(value: object) -> int | None:
    """A touch number from a tag: a small positive integer, else None (an absurd tag must not break the row)."""
    number = int_or_none(value)
    return number if number is not None and 0 < number < 2**31 else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _data(payload: dict[str, Any]) -> dict[str, Any]:
    return _dict(payload.get("data"))


def _tags(data: dict[str, Any]) -> dict[str, str]:
    """Resend tags arrive as a {name: value} object or as a [{name, value}] list; accept both."""
    tags = data.get("tags") or {}
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list):
        return {str(t["name"]): str(t.get("value")) for t in tags if isinstance(t, dict) and "name" in t}
    return {}


def delivery_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """A landed `email.*` webhook as a delivery_events row (our tags say send, campaign, touch, lead), or None for other types."""
    payload = record["payload"]
    event_type = EVENT_TYPES.get(str(payload.get("type") or ""))
    data = _data(payload)
    email_id = data.get("email_id")
    if event_type is None or not email_id:
        return None
    tags = _tags(data)
    bounce, click = _dict(data.get("bounce")), _dict(data.get("click"))
    return {
        "event_id": event_id(email_id, event_type), "send_id": tags.get("send_id"), "campaign_id": tags.get("campaign_id"),
        "touch": touch_or_none(tags.get("touch")), "lead_id": tags.get("lead_id"), "channel": "email", "event_type": event_type,
        "occurred_at": storable_time(payload.get("created_at")) or naive_utc(record.get("received_at")), "provider": "resend",
        "detail": detail_json(provider_message_id=email_id, bounce_type=bounce.get("type"), bounce_message=bounce.get("message"),
                              link=click.get("link"), landing_id=record.get("landing_id")),
    }


def received_email_id(payload: dict[str, Any]) -> str | None:
    """The received email's id when `payload` is an `email.received` webhook, else None."""
    if payload.get("type") != RECEIVED:
        return None
    data = _data(payload)
    email_id = data.get("email_id") or data.get("id")
    return str(email_id) if email_id else None


def has_content(payload: dict[str, Any]) -> bool:
    """True when the webhook itself carries the body and headers, so nothing needs fetching."""
    data = _data(payload)
    return bool(data.get("text") or data.get("html")) and isinstance(data.get("headers"), dict)


def received_reply(record: dict[str, Any], full: dict[str, Any]) -> dict[str, Any]:
    """One replies row (unattributed) from a landed `email.received` webhook and the received email in full."""
    payload = record["payload"]
    data = _data(payload)
    email = {**data, **{k: v for k, v in full.items() if v not in (None, "", [], {})}}
    headers = {str(k).lower(): v for k, v in (email.get("headers") or {}).items()} if isinstance(email.get("headers"), dict) else {}
    message_id = str(email.get("message_id") or headers.get("message-id") or "").strip() or None
    email_id = str(data.get("email_id") or data.get("id"))
    text = email.get("text") or html_to_text(str(email.get("html") or ""))
    auto = str(headers.get("auto-submitted") or "no").lower() != "no"
    return {
        "reply_id": stable_id("rpl", "email", encodable(message_id)) if message_id else stable_id("rpl", "resend", encodable(email_id)),
        "send_id": None, "campaign_id": None, "touch": None, "lead_id": None, "channel": "email",
        "from_address": parseaddr(str(email.get("from") or ""))[1].lower(), "body": new_text(str(text)),
        "intent": "auto_reply" if auto else "unknown",
        "received_at": naive_utc(email.get("created_at")) or naive_utc(payload.get("created_at")) or naive_utc(record.get("received_at")),
        "provider": "resend", "thread_refs": json.dumps(refs_from(headers.get("in-reply-to"), headers.get("references"))),
        "message_id": message_id,
    }


def received_webhook(email: dict[str, Any]) -> dict[str, Any]:
    """An email listed by `GET /emails/receiving`, shaped as the `email.received` webhook that announces it."""
    return {"type": RECEIVED, "created_at": email.get("created_at"), "data": {**email, "email_id": email["id"]}}
