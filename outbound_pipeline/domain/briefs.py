"""The path each recipient takes through a campaign's steps, and the brief each A/B variant composes from."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.spec import Step
from outbound_pipeline.providers.base import StepBrief
from outbound_pipeline.store.warehouse import insert_new


def step_briefs(step: Step, touch: int) -> dict[str | None, StepBrief]:
    """The composer's brief for the step (key None) and for each of its variants (their fields override the step's)."""
    base = StepBrief(touch=touch, intent=step.intent, channels=tuple(step.channels), tone=step.tone, cta=step.cta)
    briefs: dict[str | None, StepBrief] = {None: base}
    for v in step.variants:
        briefs[v.name] = StepBrief(touch=touch, intent=v.intent or step.intent, channels=tuple(step.channels),
                                   tone=v.tone or step.tone, cta=v.cta or step.cta)
    return briefs


def record_path(con: duckdb.DuckDBPyConnection, drafted: pd.DataFrame, campaign_id: str, touch: int, step: str, now: datetime) -> int:
    """One `recipient_steps` row per lead drafted for this step: how it got here and which variant it drew.

    A lead's first A/B assignment in the campaign is also kept on its `recipients` row (`variant`).
    """
    if drafted.empty:
        return 0
    frame = pd.DataFrame({
        "campaign_id": campaign_id, "lead_id": drafted["lead_id"].to_numpy(), "seq": drafted["route_seq"].to_numpy(),
        "touch": touch, "step": step, "variant": drafted["variant"].to_numpy(), "via": drafted["route_via"].to_numpy(),
        "entered_at": now,
    })
    added = insert_new(con, "recipient_steps", frame)
    if drafted["variant"].notna().any():
        con.execute(RECIPIENT_VARIANT_SQL, {"campaign": campaign_id})
    return added


# The variant of the first step with variants each recipient entered (its `seq` order); set once, never moved.
RECIPIENT_VARIANT_SQL = """
UPDATE recipients SET variant = first.variant
FROM (SELECT lead_id, arg_min(variant, seq) AS variant FROM recipient_steps
      WHERE campaign_id = $campaign AND variant IS NOT NULL GROUP BY lead_id) first
WHERE recipients.campaign_id = $campaign AND recipients.lead_id = first.lead_id AND recipients.variant IS NULL
"""
