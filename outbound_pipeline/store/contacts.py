"""Leads and campaign audiences: the lead list upserted, its rejects, the recipients frozen at launch, leads as profiles."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.providers.base import LeadProfile
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import insert_new, replace_where


def _clean(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else str(value)


def lead_profiles(leads: pd.DataFrame) -> list[LeadProfile]:
    """LeadProfile per row of the leads table (custom variables decoded)."""
    return [
        LeadProfile(
            lead_id=str(row["lead_id"]), first_name=str(row["first_name"]), last_name=_clean(row["last_name"]) or "",
            company=_clean(row["company"]) or "", role=_clean(row["role"]) or "", email=_clean(row["email"]), phone=_clean(row["phone"]),
            country=_clean(row["country"]), owner_email=_clean(row["owner_email"]), custom=json.loads(_clean(row["custom_vars"]) or "{}"),
        )
        for row in leads.to_dict("records")
    ]


def upsert_leads(con: duckdb.DuckDBPyConnection, leads: pd.DataFrame) -> int:
    """Add new leads and refresh the contact fields of known ones, never their status; returns how many were new."""
    before = con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
    if leads.empty:
        return 0
    con.register("_incoming_leads", validate("leads", leads))
    try:
        con.execute("""
            INSERT INTO leads SELECT * FROM _incoming_leads
            ON CONFLICT (lead_id) DO UPDATE SET
                first_name = excluded.first_name, last_name = excluded.last_name, email = excluded.email,
                phone = excluded.phone, company = excluded.company, role = excluded.role, country = excluded.country,
                timezone = excluded.timezone, owner_email = excluded.owner_email, custom_vars = excluded.custom_vars
        """)
    finally:
        con.unregister("_incoming_leads")
    return con.execute("SELECT count(*) FROM leads").fetchall()[0][0] - before


def replace_rejects(con: duckdb.DuckDBPyConnection, source_list: str, rejects: pd.DataFrame) -> None:
    """The lead list's rejected lines, replacing those of its previous import."""
    replace_where(con, "lead_rejects", rejects, "source_list = ?", [source_list])


def active_leads_of_list(con: duckdb.DuckDBPyConnection, source_list: str) -> pd.DataFrame:
    """The reachable leads imported from one lead list."""
    return con.execute("SELECT * FROM leads WHERE source_list = ? AND status = 'active'", [source_list]).df()


def lead(con: duckdb.DuckDBPyConnection, lead_id: str) -> pd.DataFrame:
    """One lead's row (empty when unknown)."""
    return con.execute("SELECT * FROM leads WHERE lead_id = ?", [lead_id]).df()


def recipient_count(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    return int(con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0])


def first_recipient(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """The lead row of the campaign's first recipient by lead id (empty without an audience)."""
    return con.execute("SELECT l.* FROM recipients r JOIN leads l USING (lead_id) WHERE r.campaign_id = ? ORDER BY l.lead_id LIMIT 1",
                       [campaign_id]).df()


def freeze_audience(con: duckdb.DuckDBPyConnection, campaign_id: str, lead_ids: pd.Series, now: datetime) -> int:
    """Add the leads as the campaign's active recipients; returns how many were added."""
    return insert_new(con, "recipients", pd.DataFrame({
        "campaign_id": campaign_id, "lead_id": lead_ids, "status": "active", "status_reason": None,
        "variant": None, "added_at": now, "updated_at": now,
    }))
