"""The campaigns table: the spec frozen at launch and the campaign's status."""

from __future__ import annotations

import duckdb

from outbound_pipeline.domain.loader import UnknownCampaignError
from outbound_pipeline.domain.spec import CampaignSpec


def campaign_spec(con: duckdb.DuckDBPyConnection, campaign_id: str) -> CampaignSpec:
    """The spec frozen when the campaign was launched."""
    row = con.execute("SELECT spec FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    if not row:
        raise UnknownCampaignError(f"campaign {campaign_id!r} has not been launched: materialise its `campaigns` partition first")
    return CampaignSpec.model_validate_json(row[0][0])


def campaign_status(con: duckdb.DuckDBPyConnection, campaign_id: str) -> str:
    row = con.execute("SELECT status FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()
    return row[0][0] if row else "unknown"
