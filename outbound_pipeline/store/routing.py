"""What the cadence reads to route leads and plan touches: lead states, due leads, work waiting per touch."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.outbox import QUEUED_STATUSES, SENDABLE_DECISIONS
from outbound_pipeline.store.views import sql_list, with_views

# Per recipient: statuses, current step (its latest draft), that step's decision and send, what the send's
# events say (`engaged`: opened, clicked or read; `undelivered`: failed, undelivered or bounced), its latest reply.
STATES_SQL = f"""
{with_views("send_outcomes", "lead_replies")}, cur AS (
    SELECT lead_id, arg_max(touch, created_at) AS touch, count(*) AS seq
    FROM drafts WHERE campaign_id = $campaign AND touch > 0 GROUP BY lead_id  -- touch 0: answers to replies, not a step
)
SELECT r.lead_id, r.status AS recipient_status, l.status AS lead_status, cur.touch, coalesce(cur.seq, 0) AS seq,
       a.decision, s.send_id, s.status AS send_status, s.sent_at, s.updated_at AS send_updated_at, coalesce(s.retries, 0) AS retries,
       coalesce(s.delivered, false) AS delivered, coalesce(s.engaged, false) AS engaged,
       coalesce(s.failed OR s.bounced, false) AS undelivered, rep.reply_intent, rep.replied_at
FROM recipients r JOIN leads l USING (lead_id)
LEFT JOIN cur USING (lead_id)
LEFT JOIN lead_replies rep ON rep.campaign_id = r.campaign_id AND rep.lead_id = r.lead_id
LEFT JOIN drafts d ON d.campaign_id = r.campaign_id AND d.lead_id = r.lead_id AND d.touch = cur.touch
LEFT JOIN approvals a ON a.draft_id = d.draft_id
LEFT JOIN send_outcomes s ON s.draft_id = d.draft_id
WHERE r.campaign_id = $campaign
ORDER BY r.lead_id
"""


def lead_states(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """One row per recipient of the campaign, as `domain.routing.route` reads it."""
    return con.execute(STATES_SQL, {"campaign": campaign_id}).df()


def undrafted_leads(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int, due: pd.DataFrame) -> pd.DataFrame:
    """Rows of `leads` for the `due` leads (lead_id, route_via, route_seq) not drafted for `touch` yet, with their route."""
    empty = pd.DataFrame({"lead_id": pd.Series(dtype=str), "route_via": pd.Series(dtype=str), "route_seq": pd.Series(dtype="int64")})
    con.register("_due_route", due if not due.empty else empty)
    try:
        return con.execute("""
            SELECT l.*, d.route_via, d.route_seq FROM _due_route d JOIN leads l USING (lead_id)
            WHERE NOT EXISTS (SELECT 1 FROM drafts x WHERE x.campaign_id = ? AND x.lead_id = d.lead_id AND x.touch = ?)
            ORDER BY l.lead_id
        """, [campaign_id, touch]).df()
    finally:
        con.unregister("_due_route")


def approved_unsent(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int | None = None) -> dict[int, int]:
    """Per touch, approved messages not handed over yet (not queued, or still `pending`/`sending`)."""
    where = "" if touch is None else f"AND d.touch = {int(touch)}"
    rows = con.execute(f"""
        SELECT d.touch, count(*) FROM drafts d JOIN approvals a USING (draft_id)
        WHERE d.campaign_id = ? {where} AND a.decision IN {sql_list(SENDABLE_DECISIONS)}
          AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id AND s.status NOT IN {sql_list(QUEUED_STATUSES)})
        GROUP BY d.touch
    """, [campaign_id]).fetchall()
    return {int(t): int(n) for t, n in rows}


def undecided_drafts(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> int:
    """Drafts of the touch with no review decision yet."""
    return int(con.execute("""SELECT count(*) FROM drafts d WHERE d.campaign_id = ? AND d.touch = ?
                              AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id)""",
                           [campaign_id, touch]).fetchall()[0][0])


def active_recipients(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    """Recipients still in the sequence (no reply, not paused or closed)."""
    return int(con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ? AND status = 'active'", [campaign_id]).fetchall()[0][0])


def launched_at(con: duckdb.DuckDBPyConnection, campaign_id: str) -> datetime | None:
    """When the campaign started running."""
    rows = con.execute("SELECT launched_at FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    return rows[0][0] if rows else None
