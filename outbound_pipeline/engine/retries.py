"""Retries: failed or undelivered sends go back to the outbox, up to the campaign's `retry_attempts`.

One failure is answered whatever the campaign's retry policy: Twilio error 63016 (the
WhatsApp 24-hour window is closed) reported after the send was accepted, by status callback
or by polling. Such a send is re-queued once to go out with the step's approved template
(never the same free text again); without a template it is left failed, saying why.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.routing import duration
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.store.warehouse import update_from

WINDOW_CLOSED = "63016"  # Twilio: outside the WhatsApp 24-hour window, only a template may go out
TEMPLATE_RESEND = "WhatsApp 24-hour window closed (Twilio 63016): re-queued once to send the step's approved template"
NO_TEMPLATE = "WhatsApp 24-hour window closed (Twilio 63016) and this step has no approved template: not re-sent"
TEMPLATE_FAILED = "WhatsApp 24-hour window closed (Twilio 63016) again after the template re-send: not re-sent"

_SID = "coalesce(json_extract_string(e.detail, '$.provider_message_id'), json_extract_string(e.detail, '$.sid'))"


def requeue_window_closed(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime) -> int:
    """Answer asynchronous 63016 failures of WhatsApp sends; returns how many were re-queued.

    A send re-queued here goes back to `pending` with `error_code = '63016'`, which makes the
    dispatcher send the template (`to_message`), under a fresh idempotency key (`retries` + 1).
    Once only: a send whose earlier message already failed with 63016 is left failed.
    """
    rows = con.execute(f"""
        SELECT s.send_id, s.touch, coalesce(s.retries, 0) AS retries, rs.variant,
               EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id AND e.event_type IN ('failed', 'undelivered')
                       AND json_extract_string(e.detail, '$.error_code') = ? AND {_SID} IS DISTINCT FROM s.provider_message_id) AS resent
        FROM sends s
        LEFT JOIN recipient_steps rs ON rs.campaign_id = s.campaign_id AND rs.lead_id = s.lead_id AND rs.touch = s.touch
        WHERE s.campaign_id = ? AND s.channel = 'whatsapp' AND s.status = 'sent'
          AND EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id AND e.event_type IN ('failed', 'undelivered')
                      AND json_extract_string(e.detail, '$.error_code') = ? AND {_SID} = s.provider_message_id)
        ORDER BY s.send_id
    """, [WINDOW_CLOSED, spec.name, WINDOW_CLOSED]).df()
    if rows.empty:
        return 0

    def template(row) -> object:
        if int(row.touch) == REPLY_TOUCH:
            return None
        return spec.step(int(row.touch)).template_for(row.variant if isinstance(row.variant, str) else None)

    has_template = pd.Series([template(r) is not None for r in rows.itertuples(index=False)], index=rows.index)
    requeue = has_template & ~rows["resent"].astype(bool)
    updates = pd.DataFrame({
        "send_id": rows["send_id"],
        "status": requeue.map({True: "pending", False: "failed"}),
        "retries": pd.array((rows["retries"] + requeue.astype(int)).astype(int), dtype="Int64"),
        "error_code": WINDOW_CLOSED,
        "error_message": [TEMPLATE_RESEND if q else (TEMPLATE_FAILED if r else NO_TEMPLATE)
                          for q, r in zip(requeue, rows["resent"].astype(bool), strict=True)],
        "updated_at": now,
    })
    update_from(con, "sends", updates, "send_id", ["status", "retries", "error_code", "error_message", "updated_at"])
    return int(requeue.sum())


def requeue_retries(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime) -> int:
    """Put sends that failed, or were reported undelivered, back to `pending` once `retry_delay` has passed.

    A send with any delivery, open or read, or whose lead is no longer active (opted out,
    bounced), is never retried. Each retry goes out under a fresh idempotency key. WhatsApp
    63016 failures are handled first (`requeue_window_closed`, even with no `retry_attempts`)
    and never retried blindly here.
    """
    requeued = requeue_window_closed(con, spec, now)
    if spec.retry_attempts <= 0:
        return requeued
    cutoff = now - duration(spec.retry_delay)
    return requeued + con.execute("""
        UPDATE sends SET status = 'pending', retries = coalesce(retries, 0) + 1, updated_at = ?
        WHERE campaign_id = ? AND coalesce(retries, 0) < ? AND coalesce(sent_at, updated_at) <= ?
          AND coalesce(error_code, '') <> ?
          AND lead_id IN (SELECT lead_id FROM leads WHERE status = 'active')
          AND NOT EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = sends.send_id
                          AND e.event_type IN ('delivered', 'opened', 'read', 'clicked', 'opted_out', 'complained'))
          AND (status = 'failed'
               OR (status = 'sent' AND EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = sends.send_id
                                               AND e.event_type IN ('failed', 'undelivered') AND e.occurred_at >= sends.sent_at)))
    """, [now, spec.name, spec.retry_attempts, cutoff, WINDOW_CLOSED]).fetchall()[0][0]
