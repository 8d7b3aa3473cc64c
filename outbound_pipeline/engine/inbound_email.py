"""Inbound email through Resend: `email.received` webhooks as replies.

The webhook announces a received email with its metadata only (id, from, to, subject,
message_id), so the body and headers are fetched with `GET /emails/receiving/{id}` unless
the payload already carries them. The reply row is shaped exactly like one read from the
IMAP mailbox: its id derives from the Message-ID (so the same email reaching us both ways
is stored once), its `thread_refs` come from In-Reply-To/References for attribution, and an
`Auto-Submitted` header marks it an auto-reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any

import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.inbox_imap import html_to_text, new_text, refs_from
from outbound_pipeline.store.landing import _ts

Fetch = Callable[[str], dict[str, Any]]


def received_emails(records: list[dict]) -> list[dict]:
    """The landed Resend `email.received` webhooks, first delivery of each email only."""
    seen: set[str] = set()
    out = []
    for record in records:
        payload = record.get("payload") if isinstance(record.get("payload"), dict) else {}
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        email_id = data.get("email_id") or data.get("id")
        if record.get("source") == "resend" and payload.get("type") == "email.received" and email_id and email_id not in seen:
            seen.add(email_id)
            out.append(record)
    return out


def _has_content(data: dict) -> bool:
    return bool(data.get("text") or data.get("html")) and isinstance(data.get("headers"), dict)


def reply_row(record: dict, full: dict) -> dict:
    """One replies row (unattributed) from the webhook record and the received email in full."""
    data = record["payload"].get("data") or {}
    email = {**data, **{k: v for k, v in full.items() if v not in (None, "", [], {})}}
    headers = {str(k).lower(): v for k, v in (email.get("headers") or {}).items()} if isinstance(email.get("headers"), dict) else {}
    message_id = str(email.get("message_id") or headers.get("message-id") or "").strip() or None
    email_id = str(data.get("email_id") or data.get("id"))
    text = email.get("text") or html_to_text(str(email.get("html") or ""))
    auto = str(headers.get("auto-submitted") or "no").lower() != "no"
    return {
        "reply_id": stable_id("rpl", "email", message_id) if message_id else stable_id("rpl", "resend", email_id),
        "send_id": None, "campaign_id": None, "touch": None, "lead_id": None, "channel": "email",
        "from_address": parseaddr(str(email.get("from") or ""))[1].lower(), "body": new_text(str(text)),
        "intent": "auto_reply" if auto else "unknown",
        "received_at": _ts(email.get("created_at")) or _ts(record["payload"].get("created_at")) or _ts(record.get("received_at")),
        "provider": "resend", "thread_refs": json.dumps(refs_from(headers.get("in-reply-to"), headers.get("references"))),
        "message_id": message_id,
    }


def resend_inbound(records: list[dict], fetch: Fetch | None) -> tuple[pd.DataFrame, list[str]]:
    """(replies rows, emails that could not be read) for the batch's `email.received` webhooks.

    An email whose body is neither in the webhook nor fetchable (no RESEND_API_KEY, or Resend
    refused) is not stored: it is returned by id so the run can fail and be re-executed.
    """
    rows, failed = [], []
    for record in received_emails(records):
        data = record["payload"]["data"]
        email_id = str(data.get("email_id") or data.get("id"))
        if _has_content(data):
            rows.append(reply_row(record, {}))
            continue
        if fetch is None:
            failed.append(f"{email_id}: the webhook has no body and RESEND_API_KEY is not set to fetch it")
            continue
        try:
            rows.append(reply_row(record, fetch(email_id)))
        except Exception as exc:  # this email only; the rest of the batch goes on
            failed.append(f"{email_id}: {exc}")
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["received_at"] = pd.to_datetime(frame["received_at"]).astype("datetime64[ns]")
        frame["touch"] = pd.array([None] * len(frame), dtype="Int64")
    return frame, failed
