"""A hand-built campaign: every row written by hand, so each metric has an answer worked out on paper.

Campaign `c1`, six leads, two steps. Step 1 (day 1, 10:00) variants A (L1, L3, L5) and B (L2, L4, L6):
- L1 email: delivered, opened, clicked; replies `interested` 2 h later;
- L2 email: delivered, opened; replies `question` 4 h later; step 2 (day 2, 10:00) delivered, replies `not_now` 10 h later,
  and the user's system records a conversion for L2 at day 2, 12:00;
- L3 email: bounced;
- L4 WhatsApp: delivered, read; replies asking to stop 1 h later;
- L5 WhatsApp: refused by the provider (failed);
- L6 email: delivered, marked as spam; its step 2 is still queued.
Costs: emails 0.01, WhatsApp 0.05 per send; 0.002 per draft; research 0.10 per lead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb

from outbound_pipeline.store.metrics import record_conversion
from outbound_pipeline.store.schema import column_specs

DAY1 = datetime(2026, 3, 2, 10, 0)
DAY2 = DAY1 + timedelta(days=1)
DEFAULTS = {"VARCHAR": "x", "INTEGER": 0, "BIGINT": 0, "DOUBLE": 0.0, "TIMESTAMP": DAY1, "BOOLEAN": False}


def insert(con: duckdb.DuckDBPyConnection, table: str, **values: Any) -> None:
    """One row, every NOT NULL column not given filled with a neutral value."""
    row = {name: values.get(name, None if nullable else DEFAULTS.get(sql_type, "x")) for name, sql_type, nullable in column_specs(table)}
    unknown = set(values) - set(row)
    assert not unknown, unknown
    con.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))


def send(con, lead: str, touch: int, channel: str, status: str, at: datetime, events: tuple[str, ...] = (), variant: str | None = None,
         replies: tuple[tuple[str, timedelta], ...] = ()) -> None:
    send_id = f"s_{lead}_{touch}"
    cost = 0.0 if status in ("failed", "pending") else (0.01 if channel == "email" else 0.05)
    insert(con, "drafts", draft_id=f"d_{lead}_{touch}", campaign_id="c1", touch=touch, lead_id=lead, channel=channel, cost_usd=0.002,
           created_at=at - timedelta(hours=1))
    insert(con, "sends", send_id=send_id, draft_id=f"d_{lead}_{touch}", campaign_id="c1", touch=touch, lead_id=lead, channel=channel,
           status=status, cost_usd=cost, attempts=1, recorded_at=at - timedelta(minutes=5), sent_at=at if status == "sent" else None,
           updated_at=at)
    insert(con, "recipient_steps", campaign_id="c1", lead_id=lead, seq=touch, touch=touch, step=f"step{touch}", variant=variant, via="entry",
           entered_at=at - timedelta(hours=2))
    for i, event in enumerate(events):
        insert(con, "delivery_events", event_id=f"e_{send_id}_{event}", send_id=send_id, campaign_id="c1", touch=touch, lead_id=lead,
               channel=channel, event_type=event, occurred_at=at + timedelta(minutes=10 * (i + 1)), ingested_at=at + timedelta(minutes=10 * (i + 1)))
    for intent, after in replies:
        insert(con, "replies", reply_id=f"r_{send_id}_{intent}", send_id=send_id, campaign_id="c1", touch=touch, lead_id=lead, channel=channel,
               intent=intent, received_at=at + after, ingested_at=at + after)


def build_campaign(con: duckdb.DuckDBPyConnection) -> None:
    for lead in ("L1", "L2", "L3", "L4", "L5", "L6"):
        insert(con, "research_snippets", campaign_id="c1", lead_id=lead, snippet_id="sn1", rank=1, cost_usd=0.1, retrieved_at=DAY1 - timedelta(hours=3))
    send(con, "L1", 1, "email", "sent", DAY1, ("delivered", "opened", "clicked"), "A", (("interested", timedelta(hours=2)),))
    send(con, "L2", 1, "email", "sent", DAY1, ("delivered", "opened"), "B", (("question", timedelta(hours=4)),))
    send(con, "L3", 1, "email", "sent", DAY1, ("bounced",), "A")
    send(con, "L4", 1, "whatsapp", "sent", DAY1, ("delivered", "read"), "B", (("opt_out", timedelta(hours=1)),))
    send(con, "L5", 1, "whatsapp", "failed", DAY1, (), "A")
    send(con, "L6", 1, "email", "sent", DAY1, ("delivered", "complained"), "B")
    send(con, "L2", 2, "email", "sent", DAY2, ("delivered",), None, (("not_now", timedelta(hours=10)),))
    send(con, "L6", 2, "email", "pending", DAY2, (), None)
    record_conversion(con, "conv-1", "c1", "L2", "meeting_booked", DAY2 + timedelta(hours=2), "crm", DAY2 + timedelta(hours=2))
