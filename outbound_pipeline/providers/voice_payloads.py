"""Landed voice records as call updates: Twilio's call status and answering-machine callbacks (`twilio_call`), and the
conversation relay's turns and endings (`voice_relay`, shaped by `http.voice`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from outbound_pipeline.providers.base import CallUpdate
from outbound_pipeline.providers.wire import naive_utc

CALL_SOURCE = "twilio_call"
RELAY_SOURCE = "voice_relay"


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _price(value: object) -> float | None:
    try:
        return abs(float(str(value)))  # Twilio reports charges as negative amounts
    except (TypeError, ValueError):
        return None


def call_update(record: dict[str, Any]) -> CallUpdate | None:
    """A status or AMD callback as an update of the call it names (our id from the signed URL's query, else its SID)."""
    params = record.get("payload")
    if not isinstance(params, dict):
        return None
    query = record.get("query")
    query = query if isinstance(query, dict) else {}
    call_id = query.get("call_id") if isinstance(query.get("call_id"), str) else None
    sid = params.get("CallSid") if isinstance(params.get("CallSid"), str) else None
    if not call_id and not sid:
        return None
    code = params.get("ErrorCode") or params.get("SipResponseCode")
    status = params.get("CallStatus") if isinstance(params.get("CallStatus"), str) else None
    answered_by = params.get("AnsweredBy") if isinstance(params.get("AnsweredBy"), str) else None
    return CallUpdate(call_id=call_id, provider_sid=sid, status=status, answered_by=answered_by,
                      duration_s=_int(params.get("CallDuration")), price_usd=_price(params.get("Price")),
                      occurred_at=naive_utc(record.get("received_at")),
                      error=f"{status}" + (f" ({code})" if code else "") if status in ("busy", "failed", "canceled") else None)


def relay_event(record: dict[str, Any]) -> dict[str, Any] | None:
    """A relay record: {call_id, kind: turn | end, seq, role, text, outcome, summary, at}, or None when malformed."""
    payload = record.get("payload")
    if not isinstance(payload, dict) or not isinstance(payload.get("call_id"), str):
        return None
    kind = payload.get("kind")
    if kind == "turn" and isinstance(payload.get("text"), str) and payload.get("role") in ("agent", "callee", "system") \
            and _int(payload.get("seq")) is not None:
        at = payload.get("at")
        return {"call_id": payload["call_id"], "kind": "turn", "seq": _int(payload["seq"]), "role": payload["role"],
                "text": payload["text"], "at": naive_utc(at) if isinstance(at, str) else naive_utc(record.get("received_at"))}
    if kind == "end" and isinstance(payload.get("outcome"), str):
        return {"call_id": payload["call_id"], "kind": "end", "outcome": payload["outcome"], "summary": str(payload.get("summary") or "")}
    return None


def when(update: CallUpdate, default: datetime) -> datetime:
    return update.occurred_at or default
