"""Landed records (webhooks, polled inboxes, unsubscribe clicks) as delivery_events and replies rows.

Each provider's payloads are read by its own parser (`providers.twilio_payloads`,
`providers.resend_payloads`); unsubscribe clicks and polled replies are ours. Records that
carry nothing worth keeping (intermediate Twilio statuses, unknown Resend types) are
skipped. Rows are deduplicated by `event_id` / `reply_id` within the batch (providers
redeliver); across batches the warehouse insert skips ids it already holds. Attribution
(campaign, lead) is left to ingestion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers import resend_payloads, twilio_payloads
from outbound_pipeline.providers.base import ReceivedEmails
from outbound_pipeline.providers.wire import detail_json, naive_utc
from outbound_pipeline.store import landing
from outbound_pipeline.store.schema import columns

EVENT_COLUMNS = [c for c in columns("delivery_events") if c != "ingested_at"]
WEBHOOK_REPLY_COLUMNS = [c for c in columns("replies") if c != "ingested_at"]
REPLY_COLUMNS = [c for c in WEBHOOK_REPLY_COLUMNS if c != "attribution"]
POLLED_REPLY = "polled_reply"  # the landing source of replies found by polling (payload: the replies row itself)


def unsubscribe_event_id(send_id: str) -> str:
    return stable_id("evt", send_id, "opted_out")


def _unsubscribe_event(record: dict[str, Any]) -> dict[str, Any] | None:
    payload = record["payload"]
    send_id = payload.get("send_id")
    if not send_id:
        return None
    return {
        "event_id": unsubscribe_event_id(send_id), "send_id": send_id, "campaign_id": None, "touch": None, "lead_id": None,
        "channel": payload.get("channel") or "email", "event_type": "opted_out", "occurred_at": naive_utc(record.get("received_at")),
        "provider": "unsubscribe", "detail": detail_json(one_click=payload.get("one_click"), landing_id=record.get("landing_id")),
    }


_EVENT_PARSERS: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "twilio_status": twilio_payloads.status_event, "resend": resend_payloads.delivery_event, "unsubscribe": _unsubscribe_event,
}
_REPLY_PARSERS: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {"twilio_inbound": twilio_payloads.inbound_reply}


def _frame(rows: list[dict[str, Any]], cols: list[str], time_column: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=cols)
    frame["touch"] = frame["touch"].astype("Int64")
    frame[time_column] = pd.to_datetime(frame[time_column]).astype("datetime64[ns]")
    for col in cols:
        if col not in ("touch", time_column):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def to_frames(records: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The webhooks among landed records as (delivery_events, replies) rows, minus `ingested_at`, deduplicated by id."""
    events: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    for record in records:
        source = str(record.get("source"))
        if not isinstance(record.get("payload"), dict):
            continue
        if source in _REPLY_PARSERS and (reply := _REPLY_PARSERS[source](record)) is not None:
            replies.append(reply)
        elif source in _EVENT_PARSERS and (event := _EVENT_PARSERS[source](record)) is not None:
            events.append(event)
    return (landing.dedupe(_frame(events, EVENT_COLUMNS, "occurred_at"), "event_id"),
            landing.dedupe(_frame(replies, WEBHOOK_REPLY_COLUMNS, "received_at"), "reply_id"))


def polled_records(replies: pd.DataFrame) -> list[dict[str, Any]]:
    """Landing records for replies found by polling (the row itself is the payload)."""
    shaped = replies.reindex(columns=REPLY_COLUMNS)
    rows = shaped.astype(object).where(shaped.notna(), None)
    return [landing.make_record(POLLED_REPLY, f"{r['provider']}:{r['reply_id']}", json.loads(json.dumps(r, default=str)))
            for r in rows.to_dict("records")]


def received_email_records(emails: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Landing records for emails listed by the email provider: shaped as the `email.received` webhook lands them, so
    ingestion fetches each in full and stores it once, whichever way (or both) it came."""
    return [landing.make_record("resend", f"poll:{e['id']}", resend_payloads.received_webhook(e)) for e in emails]


def _polled_replies(records: list[dict[str, Any]]) -> pd.DataFrame:
    polled = [r["payload"] for r in records if r.get("source") == POLLED_REPLY and isinstance(r.get("payload"), dict)]
    if not polled:
        return pd.DataFrame()
    frame = pd.DataFrame(polled).reindex(columns=REPLY_COLUMNS)
    frame["received_at"] = pd.to_datetime(frame["received_at"]).astype("datetime64[ns]")
    frame["touch"] = pd.to_numeric(frame["touch"]).astype("Int64")
    return frame


def received_emails(records: list[dict[str, Any]], received: ReceivedEmails | None) -> tuple[pd.DataFrame, list[str]]:
    """(replies rows, emails that could not be read) for the batch's `email.received` webhooks, first delivery of each.

    An email whose body is neither in the webhook nor fetchable (no email provider configured,
    or it refused) is not stored: it is returned by id so the run can fail and be re-executed.
    """
    rows, failed = [], []
    seen: set[str] = set()
    for record in records:
        payload = record.get("payload")
        email_id = resend_payloads.received_email_id(payload) if record.get("source") == "resend" and isinstance(payload, dict) else None
        if email_id is None or email_id in seen:
            continue
        seen.add(email_id)
        if resend_payloads.has_content(record["payload"]):
            rows.append(resend_payloads.received_reply(record, {}))
        elif received is None:
            failed.append(f"{email_id}: the webhook has no body and RESEND_API_KEY is not set to fetch it")
        else:
            try:
                rows.append(resend_payloads.received_reply(record, received.get_received(email_id)))
            except Exception as exc:  # this email only; the rest of the batch goes on
                failed.append(f"{email_id}: {exc}")
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["received_at"] = pd.to_datetime(frame["received_at"]).astype("datetime64[ns]")
        frame["touch"] = pd.array([None] * len(frame), dtype="Int64")
    return frame, failed


def landed_frames(records: list[dict[str, Any]], received: ReceivedEmails | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(events, replies, unread inbound emails) of a batch of landed records: webhooks, received emails (fetched in full
    through `received` when the webhook lacks the body) and polled replies."""
    events, replies = to_frames(records)
    extras = [frame for frame in (_polled_replies(records),) if not frame.empty]
    inbound, unread = received_emails(records, received)
    if not inbound.empty:
        extras.append(inbound.reindex(columns=REPLY_COLUMNS))
    if extras:
        parts = ([replies.reindex(columns=REPLY_COLUMNS)] if not replies.empty else []) + extras
        replies = landing.dedupe(pd.concat(parts, ignore_index=True), "reply_id")
    return events, replies, unread
