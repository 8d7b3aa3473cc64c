"""The research_snippets table: what is known about each recipient, fetched once per campaign."""

from __future__ import annotations

import duckdb
import pandas as pd

from outbound_pipeline.store.warehouse import insert_new


def recipients_without_research(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """Lead rows of the campaign's recipients that have no snippet yet, so re-running researches nobody twice."""
    return con.execute("""
        SELECT l.* FROM recipients r JOIN leads l USING (lead_id)
        WHERE r.campaign_id = ? AND NOT EXISTS (
            SELECT 1 FROM research_snippets s WHERE s.campaign_id = r.campaign_id AND s.lead_id = r.lead_id)
    """, [campaign_id]).df()


def count_without_research(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    """How many of the campaign's recipients have no snippet yet."""
    return int(con.execute("""
        SELECT count(*) FROM recipients r
        WHERE r.campaign_id = ? AND NOT EXISTS (
            SELECT 1 FROM research_snippets s WHERE s.campaign_id = r.campaign_id AND s.lead_id = r.lead_id)
    """, [campaign_id]).fetchone()[0])  # type: ignore[index]


def insert_snippets(con: duckdb.DuckDBPyConnection, snippets: pd.DataFrame) -> int:
    """Add the snippets not stored yet; returns how many were added."""
    return insert_new(con, "research_snippets", snippets)


def researched_leads(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    """How many of the campaign's leads have at least one snippet."""
    return int(con.execute("SELECT count(DISTINCT lead_id) FROM research_snippets WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0])


def snippets_of_leads(con: duckdb.DuckDBPyConnection, campaign_id: str, lead_ids: list[str]) -> pd.DataFrame:
    """Every snippet of these leads in the campaign."""
    con.register("_leads", pd.DataFrame({"lead_id": pd.Series(lead_ids, dtype=str)}))
    try:
        return con.execute("SELECT * FROM research_snippets WHERE campaign_id = ? AND lead_id IN (SELECT lead_id FROM _leads)",
                           [campaign_id]).df()
    finally:
        con.unregister("_leads")


def snippets_of_touch(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> pd.DataFrame:
    """The snippets a reviewer of the touch may need: those of every lead drafted for it."""
    return con.execute("""
        SELECT snippet_id, source_url, title, text FROM research_snippets
        WHERE campaign_id = ? AND lead_id IN (SELECT lead_id FROM drafts WHERE campaign_id = ? AND touch = ?)
    """, [campaign_id, campaign_id, touch]).df()
