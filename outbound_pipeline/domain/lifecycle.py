"""Campaign lifecycle: the legal status transitions, each one audited in `campaign_events`."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.ids import stable_id
from outbound_pipeline.store.warehouse import insert_new

NOT_LAUNCHED = ("draft", "scheduled")  # the statuses a launch starts from
TRANSITIONS: dict[str | None, set[str]] = {
    None: {"draft", "scheduled", "running"},
    "draft": {"scheduled", "running", "stopped"},
    "scheduled": {"draft", "scheduled", "running", "stopped"},
    "running": {"paused", "completed", "stopped"},
    "paused": {"running", "stopped"},
    "completed": set(),
    "stopped": set(),
}


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow; the message says what is allowed."""


def check(campaign_id: str, current: str | None, target: str) -> None:
    """Raise unless `current -> target` is a legal move."""
    allowed = TRANSITIONS.get(current, set())
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none (it is final)"
        raise IllegalTransition(f"campaign {campaign_id!r} is {current or 'not created'}: it cannot become {target} (allowed: {options})")


def current_status(con: duckdb.DuckDBPyConnection, campaign_id: str) -> str | None:
    row = con.execute("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    return row[0][0] if row else None


def record_event(con: duckdb.DuckDBPyConnection, campaign_id: str, from_status: str | None, to_status: str, reason: str | None,
                 actor: str, now: datetime, scheduled_for: datetime | None = None) -> None:
    seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM campaign_events WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    insert_new(con, "campaign_events", pd.DataFrame([{
        "event_id": stable_id("cev", campaign_id, from_status, to_status, now.isoformat(), reason),
        "campaign_id": campaign_id, "from_status": from_status, "to_status": to_status, "reason": reason, "actor": actor,
        "scheduled_for": scheduled_for, "occurred_at": now, "seq": seq,
    }]))


def transition(con: duckdb.DuckDBPyConnection, campaign_id: str, target: str, reason: str | None, actor: str, now: datetime,
               scheduled_for: datetime | None = None) -> str | None:
    """Move an existing campaign to `target` (legal moves only); returns the status it had."""
    current = current_status(con, campaign_id)
    if current is None:
        raise IllegalTransition(f"campaign {campaign_id!r} does not exist yet: run `outbound campaign create {campaign_id}` first")
    check(campaign_id, current, target)
    con.execute("UPDATE campaigns SET status = ?, status_reason = ?, updated_at = ? WHERE campaign_id = ?", [target, reason, now, campaign_id])
    record_event(con, campaign_id, current, target, reason, actor, now, scheduled_for)
    if target in ("stopped", "completed"):
        # Nothing more goes out: queued messages are suppressed, active recipients closed.
        con.execute("""UPDATE sends SET status = 'suppressed', error_message = 'campaign ' || ?, updated_at = ?
                       WHERE campaign_id = ? AND status = 'pending'""", [target, now, campaign_id])
        con.execute("""UPDATE recipients SET status = ?, status_reason = 'campaign ' || ?, updated_at = ?
                       WHERE campaign_id = ? AND status = 'active'""", ["stopped" if target == "stopped" else "completed", target, now, campaign_id])
    return current


def scheduled_for(con: duckdb.DuckDBPyConnection, campaign_id: str) -> datetime | None:
    """The launch time of the campaign's latest scheduling, if any."""
    rows = con.execute("""SELECT scheduled_for FROM campaign_events WHERE campaign_id = ? AND to_status = 'scheduled'
                          ORDER BY occurred_at DESC, seq DESC LIMIT 1""", [campaign_id]).fetchall()
    return rows[0][0] if rows else None
