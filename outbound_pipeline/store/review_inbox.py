"""The review inbox's reads: drafts waiting for a person across campaigns and touches, newest first, with their leads."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

_WAITING = """
SELECT d.*, l.first_name, l.last_name, l.company, l.role,
       CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address, p.body AS reply_body, c.approval_mode
FROM drafts d JOIN leads l USING (lead_id) JOIN campaigns c USING (campaign_id)
LEFT JOIN replies p ON p.reply_id = d.reply_id
WHERE NOT EXISTS (SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id)
  AND c.status NOT IN ('stopped', 'completed')
  AND ($campaign::VARCHAR IS NULL OR d.campaign_id = $campaign)
  AND ($touch::INTEGER IS NULL OR d.touch = $touch)
  AND ($channel::VARCHAR IS NULL OR d.channel = $channel)
  AND ($flagged::BOOLEAN IS NULL OR (d.flags <> '[]') = $flagged)
  AND ($q::VARCHAR = '' OR strpos(lower(concat_ws(' ', l.first_name, l.last_name, l.company, d.subject, d.body)), $q) > 0)
"""


def waiting_drafts(con: duckdb.DuckDBPyConnection, campaign: str | None = None, touch: int | None = None, channel: str | None = None,
                   flagged: bool | None = None, q: str = "", limit: int = 200) -> tuple[pd.DataFrame, int]:
    """Undecided drafts of campaigns still going, newest first, filtered; with how many match in all."""
    params: dict[str, Any] = {"campaign": campaign, "touch": touch, "channel": channel, "flagged": flagged, "q": q.strip().lower()}
    total = int(con.execute(f"SELECT count(*) FROM ({_WAITING})", params).fetchall()[0][0])
    frame = con.execute(_WAITING + " ORDER BY d.created_at DESC, d.campaign_id, d.touch, d.draft_id LIMIT $limit",
                        {**params, "limit": limit}).df()
    return frame, total


def waiting_by_touch(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per campaign and touch still going with drafts waiting: drafts, waiting, decided so far, the approval mode."""
    return con.execute("""
        SELECT d.campaign_id, d.touch, c.approval_mode, count(*) AS drafts,
               count(*) FILTER (WHERE a.draft_id IS NULL) AS waiting,
               count(a.draft_id) AS decided,
               max(d.created_at) AS newest
        FROM drafts d JOIN campaigns c USING (campaign_id) LEFT JOIN approvals a USING (draft_id)
        WHERE c.status NOT IN ('stopped', 'completed')
        GROUP BY ALL HAVING count(*) FILTER (WHERE a.draft_id IS NULL) > 0
        ORDER BY newest DESC, d.campaign_id, d.touch
    """).df()

