"""The path each recipient takes through a campaign's steps, and the brief each A/B variant composes from."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.campaigns.spec import Step
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
    """One `recipient_steps` row per lead drafted for this step: how it got here and which variant it drew."""
    if drafted.empty:
        return 0
    frame = pd.DataFrame({
        "campaign_id": campaign_id, "lead_id": drafted["lead_id"].to_numpy(), "seq": drafted["route_seq"].to_numpy(),
        "touch": touch, "step": step, "variant": drafted["variant"].to_numpy(), "via": drafted["route_via"].to_numpy(),
        "entered_at": now,
    })
    return insert_new(con, "recipient_steps", frame)
