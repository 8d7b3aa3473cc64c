"""Retries: failed or undelivered sends go back to the outbox (`domain.retry` has the policy).

`planned_retries` only reads: the cadence plan counts what is due, and routing treats a send due
for a retry as already back in the outbox. `requeue_retries` writes it, at the start of the touch's
send run, so the `sends` table has one writer.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.retry import RETRY_COLUMNS, WINDOW_CLOSED_COLUMNS, retry_updates, window_closed_updates
from outbound_pipeline.domain.routing import duration
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.store import sends as store


def _window_closed(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime, touch: int | None) -> pd.DataFrame:
    return window_closed_updates(store.window_closed_candidates(con, spec.name, touch), spec, now)


def _policy(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime, touch: int | None, answered: pd.Series) -> pd.DataFrame:
    """Retries under the campaign's `retry_attempts`, leaving out the sends a 63016 answer already covers."""
    if spec.retry_attempts <= 0:
        return retry_updates(pd.DataFrame({"send_id": [], "touch": [], "retries": []}), now)
    candidates = store.retry_candidates(con, spec.name, spec.retry_attempts, now - duration(spec.retry_delay), touch)
    return retry_updates(candidates[~candidates["send_id"].isin(answered)], now)


def planned_retries(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime, touch: int | None = None) -> pd.DataFrame:
    """What re-queueing would change now (send_id, touch, status, retries, updated_at...), without writing.
    `status` is `pending` for a send going out again, `failed` for a 63016 failure that may not."""
    closed = _window_closed(con, spec, now, touch)
    policy = _policy(con, spec, now, touch, closed["send_id"])
    frames = [f for f in (closed, policy) if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else closed


def requeue_window_closed(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime, touch: int | None = None) -> int:
    """Answer asynchronous 63016 failures of WhatsApp sends (`domain.retry`); returns how many were re-queued."""
    updates = _window_closed(con, spec, now, touch)
    store.update_sends(con, updates, WINDOW_CLOSED_COLUMNS)
    return int((updates["status"] == "pending").sum())


def requeue_retries(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime, touch: int | None = None) -> int:
    """Put the sends due for a retry (of `touch`, or of every touch) back to `pending`; returns how many.

    63016 failures are answered first (even with no `retry_attempts`) and never retried blindly.
    """
    requeued = requeue_window_closed(con, spec, now, touch)
    policy = _policy(con, spec, now, touch, pd.Series(dtype="string"))
    store.update_sends(con, policy, RETRY_COLUMNS)
    return requeued + len(policy)
