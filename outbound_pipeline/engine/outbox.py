"""The outbox: every approved or edited draft becomes a `pending` send row, carrying the approved text, before any provider is called."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.store import sends as store


def queue_touch(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int, now: datetime) -> tuple[int, int]:
    """Queue the touch's approved drafts not queued yet; returns (rows added, rows of the touch still in the outbox).

    A send's id derives from its draft's, and doubles as the provider's idempotency key.
    """
    rows = store.approved_unqueued(con, campaign_id, touch)
    frame = rows.assign(
        send_id=rows["draft_id"].str.replace("drf_", "snd_", regex=False), status="pending", provider=None,
        provider_message_id=None, error_code=None, error_message=None, segments=pd.Series(pd.NA, index=rows.index, dtype="Int64"), cost_usd=0.0, attempts=0,
        recorded_at=now, sent_at=None, updated_at=now,
    )
    return store.queue(con, frame), store.queued_count(con, campaign_id, touch)
