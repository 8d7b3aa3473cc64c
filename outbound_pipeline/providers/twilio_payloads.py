"""Twilio webhook payloads (status callbacks and inbound messages) as delivery_events and replies rows.

Ids are the same whichever way a fact arrives: an event is the message SID and its status
(webhook or polled), a reply is the inbound message's SID.
"""

from __future__ import annotations

from typing import Any

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.wire import detail_json, naive_utc

# Statuses worth a row; accepted/queued/sending/scheduled are intermediate and dropped.
EVENT_TYPES = {"sent": "sent", "delivered": "delivered", "read": "read", "undelivered": "undelivered", "failed": "failed"}
WHATSAPP_PREFIX = "whatsapp:"


def event_id(message_sid: str, status: str) -> str:
    """The delivery_events id of a Twilio status: the same whether it came by webhook or by polling."""
    return stable_id("evt", str(message_sid).encode("utf-8", "backslashreplace").decode("utf-8"), status)


def without_whatsapp_prefix(address: str) -> str:
    return address.removeprefix(WHATSAPP_PREFIX)


def channel_of(payload: dict[str, Any]) -> str:
    """WhatsApp when either number carries the `whatsapp:` prefix, else SMS."""
    numbers = (str(payload.get("To") or ""), str(payload.get("From") or ""))
    return "whatsapp" if any(n.startswith(WHATSAPP_PREFIX) for n in numbers) else "sms"


def status_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """A landed status callback as a delivery_events row (unattributed), or None for an intermediate status.

    The send id comes from the callback URL's query (`?send_id=`), when we set one.
    """
    payload = record["payload"]
    status = str(payload.get("MessageStatus") or payload.get("SmsStatus") or "").lower()
    event_type = EVENT_TYPES.get(status)
    sid = payload.get("MessageSid") or payload.get("SmsSid")
    if event_type is None or not sid or not isinstance(sid, str):  # a repeated form field arrives as a list
        return None
    query = record.get("query") or {}
    error_code = payload.get("ErrorCode")
    return {
        "event_id": event_id(sid, status), "send_id": query.get("send_id"), "campaign_id": None, "touch": None, "lead_id": None,
        "channel": channel_of(payload), "event_type": event_type, "occurred_at": naive_utc(record.get("received_at")), "provider": "twilio",
        "detail": detail_json(provider_message_id=sid, error_code=error_code if error_code not in ("0", 0) else None,
                              landing_id=record.get("landing_id")),
    }


def inbound_reply(record: dict[str, Any]) -> dict[str, Any] | None:
    """A landed inbound-message webhook as a replies row (unattributed, intent unknown), or None without SID or sender.

    A tapped quick-reply button arrives as its title (`ButtonText`, also in `Body`), so the reply reads as the lead chose it.
    """
    payload = record["payload"]
    sid = payload.get("MessageSid") or payload.get("SmsSid")
    sender = payload.get("From")
    if not sid or not sender or not isinstance(sid, str):  # a repeated form field arrives as a list
        return None
    return {
        "reply_id": sid, "send_id": None, "campaign_id": None, "touch": None, "lead_id": None, "channel": channel_of(payload),
        "from_address": without_whatsapp_prefix(str(sender)), "body": str(payload.get("Body") or payload.get("ButtonText") or ""), "intent": "unknown",
        "received_at": naive_utc(record.get("received_at")), "provider": "twilio",
    }
