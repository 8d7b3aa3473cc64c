"""Rows of the leads table as the profiles providers research and write for."""

from __future__ import annotations

import json

import pandas as pd

from outbound_pipeline.providers.base import LeadProfile


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
