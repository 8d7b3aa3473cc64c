"""A send's current status: the furthest funnel step any of its events reached.

Providers deliver callbacks out of order (a `delivered` can arrive before its `sent`),
so every event is kept as it came and the current status is derived by rank, never by
arrival time: nothing can move a message backwards through the funnel.
"""

from __future__ import annotations

import duckdb
import pandas as pd

# Higher is further. Failures outrank sent/delivered because they are final for that message.
FUNNEL_RANK = {
    "sent": 1, "delivery_delayed": 2, "delivered": 3, "opened": 4, "read": 4, "clicked": 5,
    "undelivered": 6, "failed": 6, "bounced": 7, "complained": 8, "opted_out": 9,
}


def current_statuses(con: duckdb.DuckDBPyConnection, send_ids: list[str] | None = None) -> pd.DataFrame:
    """(send_id, status, reached_at) per send with events, by funnel rank."""
    ranks = pd.DataFrame({"event_type": list(FUNNEL_RANK), "funnel_rank": list(FUNNEL_RANK.values())})
    con.register("_ranks", ranks)
    try:
        where = "WHERE e.send_id IN (SELECT unnest(?::VARCHAR[]))" if send_ids is not None else "WHERE e.send_id IS NOT NULL"
        return con.execute(f"""
            SELECT e.send_id, arg_max(e.event_type, (r.funnel_rank, e.occurred_at)) AS status, max(e.occurred_at) AS reached_at
            FROM delivery_events e JOIN _ranks r USING (event_type) {where} GROUP BY e.send_id ORDER BY e.send_id
        """, [send_ids] if send_ids is not None else []).df()
    finally:
        con.unregister("_ranks")
