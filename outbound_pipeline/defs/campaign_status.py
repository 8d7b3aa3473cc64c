"""Each campaign's lifecycle status as Dagster's instance knows it, so schedules and sensors never open DuckDB.

Every move of a campaign leaves a `status` in the instance:
- the `campaigns` materialisation (launch) and the `cadence_plan` materialisation (which completes campaigns and
  sees pauses made by the pipeline, e.g. the bounce-rate auto-pause) carry a `status` metadata value;
- a move made outside a run (`outbound campaign pause/resume/stop`, a scheduled launch, a launch undone after a
  failure) is reported as an observation of `campaigns` with the new `status` (`report_status`).
The latest of these events wins. A campaign with none of them was never launched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg

from outbound_pipeline.defs.partitions import CAMPAIGNS

CAMPAIGNS_KEY = dg.AssetKey("campaigns")
PLAN_KEY = dg.AssetKey("cadence_plan")
PLANNED = ("running",)  # the cadence plans these (and completed ones that answer replies with AI drafts)
TRACKED = ("running", "paused")  # paused: messages already handed over still report delivery


@dataclass(frozen=True)
class CampaignState:
    campaign_id: str
    status: str  # "not launched" when the instance has no status for it
    reply_mode: str | None  # from the launch's metadata; None when unknown

    @property
    def planned(self) -> bool:
        """True when the cadence has work to look for: running, or completed but still answering replies (reply_mode ai)."""
        return self.status in PLANNED or (self.status == "completed" and self.reply_mode == "ai")

    @property
    def tracked(self) -> bool:
        return self.status in TRACKED


def report_status(instance: dg.DagsterInstance, campaign_id: str, status: str, reason: str | None = None) -> None:
    """Record a lifecycle move made outside a run, where the schedules and sensors read statuses."""
    instance.report_runless_asset_event(dg.AssetObservation(
        asset_key=CAMPAIGNS_KEY, partition=campaign_id, metadata={"status": status, "reason": reason or ""}))


def _latest(records: Iterable[dg.EventLogRecord]) -> tuple[int, dict] | None:
    for record in records:
        event = record.asset_materialization or record.asset_observation
        if event is not None:
            return record.storage_id, {k: v.value for k, v in event.metadata.items()}
    return None


def campaign_state(instance: dg.DagsterInstance, campaign_id: str) -> CampaignState:
    """The campaign's latest known status (and reply mode) from the instance's event log."""
    def records(key: dg.AssetKey, observations: bool = False) -> tuple[int, dict] | None:
        flt = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[campaign_id])
        fetch = instance.fetch_observations if observations else instance.fetch_materializations
        return _latest(fetch(flt, limit=1, ascending=False).records)

    launched = records(CAMPAIGNS_KEY)
    found = [e for e in (launched, records(CAMPAIGNS_KEY, observations=True), records(PLAN_KEY)) if e is not None]
    if launched is not None and "status" not in launched[1]:  # recorded before statuses were: a launch means running
        launched[1]["status"] = "running"
    with_status = [e for e in found if e[1].get("status")]
    status = str(max(with_status, key=lambda e: e[0])[1]["status"]) if with_status else "not launched"
    reply_mode = launched[1].get("reply_mode") if launched else None
    return CampaignState(campaign_id, status, str(reply_mode) if reply_mode else None)


def campaign_states(instance: dg.DagsterInstance) -> list[CampaignState]:
    """Every campaign partition's state, in name order."""
    return [campaign_state(instance, c) for c in sorted(instance.get_dynamic_partitions(CAMPAIGNS))]


def skipped_summary(states: Iterable[CampaignState]) -> str:
    """'a (not launched), b (stopped)': the campaigns left alone, with why."""
    return ", ".join(f"{s.campaign_id} ({s.status})" for s in states)
