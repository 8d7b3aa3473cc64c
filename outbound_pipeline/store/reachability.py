"""How a campaign can reach its recipients: the WhatsApp window each lead has open, and recipients a step cannot reach."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.segments import Segment
from outbound_pipeline.store.segments import select_segment


def last_inbound(con: duckdb.DuckDBPyConnection, lead_ids: list[str]) -> dict[str, datetime]:
    """lead id -> its last inbound WhatsApp message (the start of its 24-hour window), for the leads that wrote to us."""
    if not lead_ids:
        return {}
    rows = con.execute("SELECT lead_id, last_inbound_at FROM inbound_windows WHERE list_contains(?, lead_id)", [lead_ids]).fetchall()
    return {str(lead): at for lead, at in rows}


def fail_recipients(con: duckdb.DuckDBPyConnection, campaign_id: str, failures: pd.DataFrame, now: datetime) -> int:
    """Mark active recipients `failed` with their reason (`failures`: lead_id, reason); returns how many changed.

    A failed recipient is out of the sequence: routing no longer finds it due, and nothing is drafted for it.
    """
    if failures.empty:
        return 0
    con.register("_unreachable", failures[["lead_id", "reason"]])
    try:
        changed = con.execute("""
            UPDATE recipients SET status = 'failed', status_reason = u.reason, updated_at = ?
            FROM _unreachable u
            WHERE recipients.campaign_id = ? AND recipients.lead_id = u.lead_id AND recipients.status = 'active'
        """, [now, campaign_id]).fetchall()
    finally:
        con.unregister("_unreachable")
    return int(changed[0][0]) if changed else 0


def audience_leads(con: duckdb.DuckDBPyConnection, campaign_id: str, list_names: list[str], segment: Segment | None,
                   now: datetime) -> pd.DataFrame:
    """The leads a campaign reaches, as far as the database knows: its frozen recipients once launched, else the active
    leads of its lists that its segment selects now, as launch would freeze them (empty when neither is there)."""
    frozen = con.execute("""SELECT l.* FROM recipients r JOIN leads l USING (lead_id)
                            WHERE r.campaign_id = ? ORDER BY l.source_list, l.source_line""", [campaign_id]).df()
    if not frozen.empty:
        return frozen
    return select_segment(con, list_names, segment, now)


def opt_outs(con: duckdb.DuckDBPyConnection, lead_id: str) -> pd.DataFrame:
    """A contact's preferences as the suppression list holds them: each channel it opted out of (or `all`), why, when and
    from which reply or event; matched on the lead and on its email and phone, as sends are checked."""
    return con.execute("""
        SELECT DISTINCT x.channel, x.reason, x.address, x.source, x.created_at FROM suppressions x, leads l
        WHERE l.lead_id = ? AND (x.lead_id = l.lead_id OR lower(x.address) IN (lower(l.email), lower(l.phone)))
        ORDER BY x.created_at, x.channel
    """, [lead_id]).df()


def opted_out_channels(con: duckdb.DuckDBPyConnection, lead_ids: list[str]) -> dict[str, set[str]]:
    """lead id -> the channels it opted out of (`all` for every channel), matched on the lead and its addresses; leads without
    an opt-out are left out."""
    if not lead_ids:
        return {}
    rows = con.execute("""
        SELECT DISTINCT l.lead_id, x.channel FROM leads l JOIN suppressions x
          ON x.lead_id = l.lead_id OR lower(x.address) IN (lower(l.email), lower(l.phone))
        WHERE list_contains(?, l.lead_id)
    """, [lead_ids]).fetchall()
    out: dict[str, set[str]] = {}
    for lead, channel in rows:
        out.setdefault(str(lead), set()).add(str(channel))
    return out
