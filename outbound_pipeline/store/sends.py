"""The sends table (the outbox and what became of each message): queueing, dispatch reads and writes, retries, usage.

`sends` is written by the send stage only: the `outbox` asset queues rows, the `sends` asset
marks, records results and re-queues retries. Reads that decide what may go out (suppressions,
limits, the blocking check) live here too, next to the rows they guard.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.funnel import FAILED_EVENTS
from outbound_pipeline.domain.outbox import QUEUED_STATUSES, SENDABLE_DECISIONS
from outbound_pipeline.domain.retry import WINDOW_CLOSED
from outbound_pipeline.store.views import is_event, sql_list, with_views
from outbound_pipeline.store.warehouse import insert_new, update_from

APPROVED = sql_list(SENDABLE_DECISIONS)
QUEUED = sql_list(QUEUED_STATUSES)


# --------------------------------------------------------------------------- the outbox


def approved_unqueued(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """The touch's approved or edited drafts with no send row yet, with the approved text and the lead's address."""
    return con.execute(f"""
        SELECT d.draft_id, d.campaign_id, d.touch, d.lead_id, d.channel,
               CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address,
               a.final_subject AS subject, a.final_body AS body
        FROM drafts d JOIN approvals a USING (draft_id) JOIN leads l USING (lead_id)
        WHERE d.campaign_id = ? AND d.touch = ? AND a.decision IN {APPROVED}
          AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id)
    """, [campaign_id, touch]).df()


def queue(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    """Insert new outbox rows (existing send ids are left alone); returns how many were new."""
    return insert_new(con, "sends", frame)


def queued_count(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> int:
    """Messages of the touch still in the outbox (`pending` or `sending`)."""
    return int(con.execute(f"SELECT count(*) FROM sends WHERE campaign_id = ? AND touch = ? AND status IN {QUEUED}",
                           [campaign_id, touch]).fetchall()[0][0])


def touch_sends(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """Every send row of one touch with its outcome: what an audit of the outbox against a provider's records reads."""
    return con.execute("""
        SELECT send_id, channel, to_address, body, status, provider, provider_message_id, attempts
        FROM sends WHERE campaign_id = ? AND touch = ? ORDER BY send_id
    """, [campaign_id, touch]).df()


def unapproved_queued(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Outbox rows that must not go out: no approval, a rejected draft, or a text other than the approved one."""
    return con.execute(f"""
        SELECT s.send_id, s.draft_id,
               CASE WHEN a.draft_id IS NULL THEN 'no approval row'
                    WHEN a.decision = 'rejected' THEN 'draft was rejected'
                    ELSE 'text differs from the approved text' END AS problem
        FROM sends s LEFT JOIN approvals a USING (draft_id)
        WHERE s.status IN {QUEUED}
          AND (a.draft_id IS NULL OR a.decision NOT IN {APPROVED} OR s.body IS DISTINCT FROM a.final_body
               OR s.subject IS DISTINCT FROM a.final_subject)
    """).df()


# --------------------------------------------------------------------------- dispatch


def due_outbox(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """The touch's outbox rows in send order, each with what dispatch decides by: its lead, recipient status,
    approval (or why the text no longer matches it), the lead's last inbound message, reply threading and variant."""
    return con.execute(f"""
        SELECT s.*, w.last_inbound_at, t.reply_message_id, t.reply_thread_refs, rs.variant, l.timezone, l.status AS lead_status,
               l.owner_email, l.custom_vars, l.first_name, l.last_name, l.company, l.role, l.email, l.phone,
               CASE WHEN r.status = 'replied' AND s.touch = 0 THEN 'active'  -- the answer to their reply
                    WHEN r.status = 'replied' AND EXISTS (SELECT 1 FROM recipient_steps rs WHERE rs.campaign_id = s.campaign_id
                    AND rs.lead_id = s.lead_id AND rs.touch = s.touch AND rs.via LIKE 'replied:%')  -- a reply branch
                    THEN 'active' ELSE r.status END AS recipient_status,
               CASE WHEN a.decision IN {APPROVED}  -- defence in depth behind the outbox check
                     AND (s.body IS DISTINCT FROM a.final_body OR s.subject IS DISTINCT FROM a.final_subject)
                    THEN 'text differs from the approved text' ELSE a.decision END AS decision
        FROM sends s JOIN leads l USING (lead_id)
        LEFT JOIN recipients r ON r.campaign_id = s.campaign_id AND r.lead_id = s.lead_id
        LEFT JOIN approvals a ON a.draft_id = s.draft_id
        LEFT JOIN (SELECT lead_id, last_inbound_at FROM inbound_windows) w ON w.lead_id = s.lead_id
        LEFT JOIN (SELECT d.draft_id, p.message_id AS reply_message_id, p.thread_refs AS reply_thread_refs
                   FROM drafts d JOIN replies p ON p.reply_id = d.reply_id) t ON t.draft_id = s.draft_id
        LEFT JOIN recipient_steps rs ON rs.campaign_id = s.campaign_id AND rs.lead_id = s.lead_id AND rs.touch = s.touch
        WHERE s.campaign_id = ? AND s.touch = ? AND s.status IN {QUEUED}
        ORDER BY s.send_id
    """, [campaign_id, touch]).df()


def suppression_hits(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> pd.DataFrame:
    """(send_id, error_message) of the `rows` (send_id, lead_id, to_address, channel) whose lead or address is suppressed."""
    con.register("_outgoing", rows[["send_id", "lead_id", "to_address", "channel"]].astype("string"))
    try:
        return con.execute("""
            SELECT o.send_id, any_value('suppressed: ' || x.reason) AS error_message FROM _outgoing o
            JOIN suppressions x ON (x.lead_id = o.lead_id OR lower(x.address) = lower(o.to_address))
                               AND x.channel IN ('all', o.channel)
            GROUP BY o.send_id
        """).df()
    finally:
        con.unregister("_outgoing")


def update_sends(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, columns: list[str]) -> None:
    """Set `columns` of the sends in `frame` (keyed by send_id)."""
    update_from(con, "sends", frame, "send_id", columns)


def record_results(con: duckdb.DuckDBPyConnection, results: pd.DataFrame, columns: list[str], lead_marks: pd.DataFrame) -> None:
    """Write send results and, in the same transaction, the lead statuses providers reported
    (`lead_marks`: send_id, lead_status; e.g. an invalid number); only active leads change."""
    con.execute("BEGIN")
    try:
        update_from(con, "sends", results, "send_id", columns)
        if not lead_marks.empty:
            con.register("_marked", lead_marks[["lead_status", "send_id"]])
            try:
                con.execute("""
                    UPDATE leads SET status = m.lead_status, status_reason = 'provider: ' || s.error_code
                    FROM _marked m JOIN sends s USING (send_id) WHERE leads.lead_id = s.lead_id AND leads.status = 'active'
                """)
            finally:
                con.unregister("_marked")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- retries


def _touch_filter(alias: str, touch: int | None) -> str:
    return "" if touch is None else f"AND {alias}.touch = {int(touch)}"


def window_closed_candidates(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int | None = None) -> pd.DataFrame:
    """WhatsApp sends accepted, then reported failed with 63016 for the message they carry now:
    send_id, touch, retries, variant, and `resent` (an earlier message of the same send already failed so)."""
    sid = "coalesce(json_extract_string(e.detail, '$.provider_message_id'), json_extract_string(e.detail, '$.sid'))"
    failed = f"""SELECT 1 FROM delivery_events e WHERE e.send_id = s.send_id AND {is_event("e.event_type", FAILED_EVENTS)}
                 AND json_extract_string(e.detail, '$.error_code') = $code"""
    return con.execute(f"""
        SELECT s.send_id, s.touch, coalesce(s.retries, 0) AS retries, rs.variant,
               EXISTS ({failed} AND {sid} IS DISTINCT FROM s.provider_message_id) AS resent
        FROM sends s
        LEFT JOIN recipient_steps rs ON rs.campaign_id = s.campaign_id AND rs.lead_id = s.lead_id AND rs.touch = s.touch
        WHERE s.campaign_id = $campaign AND s.channel = 'whatsapp' AND s.status = 'sent' {_touch_filter("s", touch)}
          AND EXISTS ({failed} AND {sid} = s.provider_message_id)
        ORDER BY s.send_id
    """, {"code": WINDOW_CLOSED, "campaign": campaign_id}).df()


def retry_candidates(con: duckdb.DuckDBPyConnection, campaign_id: str, max_retries: int, cutoff: datetime,
                     touch: int | None = None) -> pd.DataFrame:
    """Sends (send_id, touch, retries) that failed, or were reported failed/undelivered after they were sent, at or before
    `cutoff`, with retries left, to an active lead, never delivered, opted out or complained about, and not a 63016 failure."""
    return con.execute(f"""
        {with_views("send_outcomes")}
        SELECT o.send_id, o.touch, coalesce(o.retries, 0) AS retries FROM send_outcomes o
        WHERE o.campaign_id = $campaign {_touch_filter("o", touch)} AND coalesce(o.retries, 0) < $max_retries
          AND coalesce(o.sent_at, o.updated_at) <= $cutoff AND coalesce(o.error_code, '') <> $code
          AND o.lead_id IN (SELECT lead_id FROM leads WHERE status = 'active')
          AND NOT (o.delivered OR o.opted_out OR o.complained)
          AND (o.status = 'failed' OR (o.status = 'sent' AND o.failed_at >= o.sent_at))
        ORDER BY o.send_id
    """, {"campaign": campaign_id, "max_retries": max_retries, "cutoff": cutoff, "code": WINDOW_CLOSED}).df()


# --------------------------------------------------------------------------- usage, for sending limits


def sent_per_lead_since(con: duckdb.DuckDBPyConnection, lead_ids: pd.Series, since: datetime) -> dict[str, int]:
    """Messages handed over (`sent` or `sending`) to each of `lead_ids` after `since`, across campaigns."""
    con.register("_admit_leads", pd.DataFrame({"lead_id": lead_ids.drop_duplicates()}))
    try:
        return {str(k): int(v) for k, v in con.execute("""
            SELECT s.lead_id, count(*) FROM sends s JOIN _admit_leads USING (lead_id)
            WHERE s.status IN ('sent', 'sending') AND coalesce(s.sent_at, s.updated_at) > ? GROUP BY s.lead_id
        """, [since]).fetchall()}
    finally:
        con.unregister("_admit_leads")


def whatsapp_numbers_opened(con: duckdb.DuckDBPyConnection, since: datetime) -> set[str]:
    """WhatsApp numbers we started a conversation with after `since`: sends to numbers with no inbound message in the 24 h before."""
    return {r[0] for r in con.execute("""
        SELECT DISTINCT s.to_address FROM sends s
        WHERE s.channel = 'whatsapp' AND s.status IN ('sent', 'sending') AND coalesce(s.sent_at, s.updated_at) > $since
          AND NOT EXISTS (SELECT 1 FROM replies p WHERE p.channel = 'whatsapp' AND p.from_address = s.to_address
                          AND p.received_at <= coalesce(s.sent_at, s.updated_at)
                          AND p.received_at > coalesce(s.sent_at, s.updated_at) - INTERVAL 24 HOUR)
    """, {"since": since}).fetchall()}


def whatsapp_numbers_inbound(con: duckdb.DuckDBPyConnection, since: datetime, until: datetime) -> set[str]:
    """WhatsApp numbers that wrote to us in (since, until]: their service window is open."""
    return {r[0] for r in con.execute("""SELECT DISTINCT from_address FROM replies WHERE channel = 'whatsapp'
                                         AND received_at > ? AND received_at <= ?""", [since, until]).fetchall()}


def usage(con: duckdb.DuckDBPyConnection, campaign_id: str, day_start: datetime) -> tuple[int, int]:
    """(messages handed over since `day_start` across campaigns, the campaign's messages in flight)."""
    sent_today, in_flight = con.execute(f"""
        {with_views("send_outcomes")}
        SELECT
          (SELECT count(*) FROM sends WHERE status IN ('sent', 'sending') AND coalesce(sent_at, updated_at) >= $day_start),
          (SELECT count(*) FROM send_outcomes WHERE campaign_id = $campaign AND in_flight)
    """, {"day_start": day_start, "campaign": campaign_id}).fetchall()[0]
    return int(sent_today), int(in_flight)
