"""Retries: failed or undelivered sends go back to the outbox, up to the campaign's `retry_attempts`."""

from __future__ import annotations

from datetime import datetime

import duckdb

from outbound_pipeline.campaigns.spec import CampaignSpec
from outbound_pipeline.defs.cadence.due import duration


def requeue_retries(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime) -> int:
    """Put sends that failed, or were reported undelivered, back to `pending` once `retry_delay` has passed.

    A send with any delivery, open or read, or whose lead is no longer active (opted out,
    bounced), is never retried. Each retry goes out under a fresh idempotency key.
    """
    if spec.retry_attempts <= 0:
        return 0
    cutoff = now - duration(spec.retry_delay)
    return con.execute("""
        UPDATE sends SET status = 'pending', retries = coalesce(retries, 0) + 1, updated_at = ?
        WHERE campaign_id = ? AND coalesce(retries, 0) < ? AND coalesce(sent_at, updated_at) <= ?
          AND lead_id IN (SELECT lead_id FROM leads WHERE status = 'active')
          AND NOT EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = sends.send_id
                          AND e.event_type IN ('delivered', 'opened', 'read', 'clicked', 'opted_out', 'complained'))
          AND (status = 'failed'
               OR (status = 'sent' AND EXISTS (SELECT 1 FROM delivery_events e WHERE e.send_id = sends.send_id
                                               AND e.event_type IN ('failed', 'undelivered') AND e.occurred_at >= sends.sent_at)))
    """, [now, spec.name, spec.retry_attempts, cutoff]).fetchall()[0][0]
