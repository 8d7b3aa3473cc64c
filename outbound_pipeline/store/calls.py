"""All SQL of voice campaigns: the contacts to call, the calls, their transcript turns, call metrics and stats.

The dial step (`engine.dialer`) is the one writer of `call_contacts`, `calls`, `call_turns` and `dial_cursor`;
the `call_metrics` asset writes `call_metrics`. `call_stats` and `call_contacts` are what the HTTP API and
`outbound campaign status` read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import duckdb
import pandas as pd

from outbound_pipeline.domain.dialer import STATUSES, progress
from outbound_pipeline.store.warehouse import insert_new, replace_where, update_from

CONTACT_RESULT_COLUMNS = ["status", "next_attempt_at", "duration_s", "outcome", "error_message", "updated_at"]
CALL_RESULT_COLUMNS = ["status", "provider_sid", "provider_status", "answered_by", "answered_at", "ended_at", "duration_s", "billed_minutes",
                       "cost_usd", "outcome", "summary", "voicemail_left", "error_message", "updated_at"]


def running_campaigns(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(campaign_id, frozen spec JSON) of every running campaign; the engine keeps the voice ones."""
    return [(str(c), str(s)) for c, s in con.execute(
        "SELECT campaign_id, spec FROM campaigns WHERE status = 'running' ORDER BY campaign_id").fetchall()]


def enqueue_contacts(con: duckdb.DuckDBPyConnection, campaign_id: str, now: datetime) -> int:
    """Put the campaign's recipients not queued yet in its call list, in list order; returns how many joined.

    A contact with no phone, no longer active or suppressed on any channel joins as `failed` with the reason, never dialled.
    """
    before = con.execute("SELECT count(*) FROM call_contacts WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    con.execute("""
        INSERT INTO call_contacts (campaign_id, lead_id, seq, phone, timezone, status, attempts, queued_at, error_message, updated_at)
        SELECT r.campaign_id, r.lead_id,
               ? + row_number() OVER (ORDER BY l.source_list, l.source_line, l.lead_id),
               l.phone, l.timezone,
               CASE WHEN reason IS NULL THEN 'pending' ELSE 'failed' END, 0, ?, reason, ?
        FROM (
            SELECT r.*, CASE
                WHEN l.phone IS NULL THEN 'no phone number'
                WHEN l.status <> 'active' THEN 'contact is ' || l.status
                WHEN EXISTS (SELECT 1 FROM suppressions x WHERE x.channel IN ('all', 'voice')
                             AND (x.lead_id = l.lead_id OR x.address = l.phone)) THEN 'suppressed'
                END AS reason
            FROM recipients r JOIN leads l USING (lead_id)
            WHERE r.campaign_id = ? AND r.status IN ('active', 'paused')
        ) r JOIN leads l USING (lead_id)
        WHERE NOT EXISTS (SELECT 1 FROM call_contacts c WHERE c.campaign_id = r.campaign_id AND c.lead_id = r.lead_id)
    """, [before, now, now, campaign_id])
    return con.execute("SELECT count(*) FROM call_contacts WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0] - before


def ready_contacts(con: duckdb.DuckDBPyConnection, campaign_id: str, now: datetime, limit: int) -> pd.DataFrame:
    """Contacts that may be dialled now, earliest ready first: pending ones by queue time, retries once their delay passed.

    Contacts suppressed since they were queued are left out.
    """
    return con.execute("""
        SELECT c.lead_id, c.phone, c.timezone, c.seq, c.attempts,
               CASE WHEN c.status = 'pending' THEN c.queued_at ELSE c.next_attempt_at END AS ready_at
        FROM call_contacts c
        WHERE c.campaign_id = ? AND c.phone IS NOT NULL
          AND (c.status = 'pending' OR (c.status IN ('failed', 'no_answer') AND c.next_attempt_at <= ?))
          AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.channel IN ('all', 'voice')
                          AND (x.lead_id = c.lead_id OR x.address = c.phone))
        ORDER BY ready_at, c.seq
        LIMIT ?
    """, [campaign_id, now, limit]).df()


def in_flight(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Calls in flight per campaign, across every campaign (the limits are global)."""
    return {str(c): int(n) for c, n in con.execute(
        "SELECT campaign_id, count(*) FROM calls WHERE status = 'calling' GROUP BY campaign_id").fetchall()}


def open_calls(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every call still `calling`, with what the provider said so far."""
    return con.execute("SELECT * FROM calls WHERE status = 'calling' ORDER BY placed_at, call_id").df()


def calls_by_ids(con: duckdb.DuckDBPyConnection, call_ids: list[str], provider_sids: list[str]) -> pd.DataFrame:
    """Calls named by our id or by the provider's SID."""
    return con.execute("SELECT * FROM calls WHERE list_contains(?, call_id) OR list_contains(?, provider_sid)",
                       [call_ids, provider_sids]).df()


def placed_count(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    """Calls the campaign has placed so far: the next caller ID in its pool rotation."""
    return int(con.execute("SELECT count(*) FROM calls WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0])


def lead_variables(con: duckdb.DuckDBPyConnection, lead_ids: list[str]) -> pd.DataFrame:
    """The leads' fields and custom variables, for the agent's opening line and voicemail message."""
    return con.execute("SELECT * FROM leads WHERE list_contains(?, lead_id)", [lead_ids]).df()


def lead_snippets(con: duckdb.DuckDBPyConnection, campaign_id: str, lead_ids: list[str]) -> dict[str, list[str]]:
    """Research snippets of the leads in this campaign, when the campaign researched them."""
    rows = con.execute("""SELECT lead_id, text FROM research_snippets WHERE campaign_id = ? AND list_contains(?, lead_id)
                          ORDER BY lead_id, rank""", [campaign_id, lead_ids]).fetchall()
    found: dict[str, list[str]] = {}
    for lead, text in rows:
        found.setdefault(str(lead), []).append(str(text))
    return found


def record_placed(con: duckdb.DuckDBPyConnection, calls: pd.DataFrame, now: datetime) -> int:
    """Store calls about to be placed (status `calling`) and move their contacts to `calling`, in one transaction."""
    if calls.empty:
        return 0
    con.execute("BEGIN")
    try:
        added = insert_new(con, "calls", calls)
        con.register("_placed", calls[["campaign_id", "lead_id", "call_id", "status", "error_message"]])
        con.execute("""
            UPDATE call_contacts SET status = p.status, attempts = attempts + 1, last_call_id = p.call_id,
                   next_attempt_at = NULL, error_message = p.error_message, updated_at = ?
            FROM _placed p WHERE call_contacts.campaign_id = p.campaign_id AND call_contacts.lead_id = p.lead_id
              AND (call_contacts.last_call_id IS NULL OR call_contacts.last_call_id <> p.call_id)
        """, [now])
        con.unregister("_placed")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return added


def update_calls(con: duckdb.DuckDBPyConnection, calls: pd.DataFrame, columns: list[str]) -> None:
    """Set `columns` of calls (keyed by call_id): what the provider reported, without ending them."""
    update_from(con, "calls", calls, "call_id", columns)


def record_results(con: duckdb.DuckDBPyConnection, calls: pd.DataFrame, contacts: pd.DataFrame) -> None:
    """Ended calls and their contacts' new statuses (with the retry time when one remains), in one transaction."""
    if calls.empty:
        return
    con.execute("BEGIN")
    try:
        update_from(con, "calls", calls, "call_id", CALL_RESULT_COLUMNS)
        con.register("_results", contacts[["campaign_id", "lead_id", "call_id", *CONTACT_RESULT_COLUMNS]])
        con.execute(f"""
            UPDATE call_contacts SET {', '.join(f'{c} = r.{c}' for c in CONTACT_RESULT_COLUMNS)}
            FROM _results r WHERE call_contacts.campaign_id = r.campaign_id AND call_contacts.lead_id = r.lead_id
              AND call_contacts.last_call_id = r.call_id
        """)
        con.unregister("_results")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def add_turns(con: duckdb.DuckDBPyConnection, turns: pd.DataFrame) -> int:
    """Transcript turns (call_id, seq, role, text, spoken_at); a turn delivered twice is stored once."""
    return insert_new(con, "call_turns", turns) if not turns.empty else 0


def transcript(con: duckdb.DuckDBPyConnection, call_id: str) -> pd.DataFrame:
    return con.execute("SELECT seq, role, text, spoken_at FROM call_turns WHERE call_id = ? ORDER BY seq", [call_id]).df()


def cursor(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    rows = con.execute("SELECT position FROM dial_cursor WHERE name = ?", [name]).fetchall()
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def set_cursor(con: duckdb.DuckDBPyConnection, name: str, position: str | None, now: datetime) -> None:
    con.execute("""INSERT INTO dial_cursor VALUES (?, ?, ?)
                   ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at""",
                [name, position, now])


def unfinished(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    """Contacts with work left: pending, calling, or failed / no_answer with a retry still to come."""
    return int(con.execute("""SELECT count(*) FROM call_contacts WHERE campaign_id = ?
                              AND (status IN ('pending', 'calling') OR next_attempt_at IS NOT NULL)""",
                           [campaign_id]).fetchall()[0][0])


def call_stats(con: duckdb.DuckDBPyConnection, campaign_id: str) -> dict[str, Any]:
    """The campaign's stats as the product shows them: contacts by status, progress %, call metrics, outcomes and cost."""
    status_row = con.execute("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    counts = {s: 0 for s in STATUSES}
    for status, n in con.execute("SELECT status, count(*) FROM call_contacts WHERE campaign_id = ? GROUP BY status",
                                 [campaign_id]).fetchall():
        counts[str(status)] = int(n)
    retrying = con.execute("""SELECT count(*) FROM call_contacts WHERE campaign_id = ? AND next_attempt_at IS NOT NULL
                              AND status IN ('failed', 'no_answer')""", [campaign_id]).fetchall()[0][0]
    metrics = con.execute("""
        SELECT count(*), round(avg(duration_s) FILTER (WHERE duration_s > 0)), max(duration_s) FILTER (WHERE duration_s > 0),
               min(duration_s) FILTER (WHERE duration_s > 0), coalesce(sum(billed_minutes), 0), coalesce(sum(cost_usd), 0),
               count(*) FILTER (WHERE answered_by = 'human' OR (status = 'completed' AND answered_by IS NULL))
        FROM calls WHERE campaign_id = ?
    """, [campaign_id]).fetchall()[0]
    outcomes = {str(o): int(n) for o, n in con.execute(
        "SELECT outcome, count(*) FROM calls WHERE campaign_id = ? AND outcome IS NOT NULL GROUP BY outcome ORDER BY outcome",
        [campaign_id]).fetchall()}
    return {
        "campaign_id": campaign_id,
        "campaign_status": str(status_row[0][0]) if status_row else None,
        "contacts": {"total": sum(counts.values()), **counts},
        "progress": progress({**counts, "retrying": int(retrying)}),
        "call_metrics": {
            "avg_duration_seconds": int(metrics[1]) if metrics[1] is not None else None,
            "max_duration_seconds": int(metrics[2]) if metrics[2] is not None else None,
            "min_duration_seconds": int(metrics[3]) if metrics[3] is not None else None,
            "total_attempts": int(metrics[0]),
            "answered_by_human": int(metrics[6]),
            "billed_minutes": int(metrics[4]),
            "cost_usd": round(float(metrics[5]), 4),
        },
        "outcomes": outcomes,
    }


def call_contacts(con: duckdb.DuckDBPyConnection, campaign_id: str, status: str | None = None, page: int = 1,
                  limit: int = 50) -> list[dict[str, Any]]:
    """One page of the campaign's contacts, in list order: status, attempts, last call's duration, outcome, error."""
    page, limit = max(1, int(page)), max(1, min(500, int(limit)))
    frame = con.execute("""
        SELECT c.lead_id, l.first_name, l.last_name, c.phone, c.status, c.attempts, c.duration_s AS duration_seconds,
               c.outcome, c.error_message, c.next_attempt_at, c.last_call_id, c.updated_at
        FROM call_contacts c LEFT JOIN leads l USING (lead_id)
        WHERE c.campaign_id = ? AND (? IS NULL OR c.status = ?)
        ORDER BY c.seq LIMIT ? OFFSET ?
    """, [campaign_id, status, status, limit, (page - 1) * limit]).df()
    rows = cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))
    for row in rows:
        for key in ("next_attempt_at", "updated_at"):
            if row[key] is not None:
                row[key] = pd.Timestamp(row[key]).isoformat()
        if row["duration_seconds"] is not None:
            row["duration_seconds"] = int(row["duration_seconds"])
        row["attempts"] = int(row["attempts"])
    return rows


def call_metrics_frame(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Per voice campaign: calls placed, answered by a person, voicemail, no answer, failed, average duration,
    billed minutes, cost and cost per minute, outcomes."""
    frame = con.execute("""
        WITH contacts AS (SELECT campaign_id, count(*) AS contacts FROM call_contacts GROUP BY campaign_id),
        outcomes AS (SELECT campaign_id, to_json(map(list(outcome ORDER BY outcome), list(n ORDER BY outcome)))::VARCHAR AS outcomes
                     FROM (SELECT campaign_id, outcome, count(*) AS n FROM calls WHERE outcome IS NOT NULL GROUP BY ALL)
                     GROUP BY campaign_id)
        SELECT k.campaign_id, k.contacts,
               count(c.call_id) AS calls_placed,
               count(*) FILTER (WHERE c.answered_by = 'human' OR (c.status = 'completed' AND c.answered_by IS NULL)) AS answered_human,
               count(*) FILTER (WHERE c.status = 'voicemail') AS voicemail,
               count(*) FILTER (WHERE c.status = 'no_answer') AS no_answer,
               count(*) FILTER (WHERE c.status = 'failed') AS failed,
               avg(c.duration_s) FILTER (WHERE c.duration_s > 0) AS avg_duration_s,
               coalesce(sum(c.billed_minutes), 0) AS billed_minutes,
               coalesce(sum(c.cost_usd), 0) AS cost_usd,
               CASE WHEN sum(c.billed_minutes) > 0 THEN sum(c.cost_usd) / sum(c.billed_minutes) END AS cost_per_minute,
               coalesce(any_value(o.outcomes), '{}') AS outcomes
        FROM contacts k LEFT JOIN calls c USING (campaign_id) LEFT JOIN outcomes o USING (campaign_id)
        GROUP BY k.campaign_id, k.contacts ORDER BY k.campaign_id
    """).df()
    return frame.assign(updated_at=now)


def replace_call_metrics(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    replace_where(con, "call_metrics", frame, "TRUE", [])


def read_call_metrics(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    return con.execute("SELECT * FROM call_metrics WHERE ? IS NULL OR campaign_id = ? ORDER BY campaign_id",
                       [campaign_id, campaign_id]).df()



def outlook(con: duckdb.DuckDBPyConnection, campaign_id: str) -> tuple[int, datetime | None]:
    """(calls in flight, earliest retry due) of one campaign: how far a simulated clock may jump."""
    row = con.execute("""SELECT count(*) FILTER (WHERE status = 'calling'),
                                min(next_attempt_at) FILTER (WHERE status IN ('failed', 'no_answer'))
                         FROM call_contacts WHERE campaign_id = ?""", [campaign_id]).fetchall()[0]
    return int(row[0] or 0), row[1]
