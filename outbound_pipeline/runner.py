"""Drives a campaign through its Dagster runs: launch, track and plan, touches, metrics.

The same selections the schedules and sensors request in production, materialised in-process
against one instance and database at a chosen time; used by `outbound campaign launch`,
`outbound review send`, the offline demo and the tests.
"""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from outbound_pipeline.definitions import ASSET_CHECKS, ASSETS
from outbound_pipeline.defs.resources import (
    ChannelService,
    ComposeService,
    InboxService,
    IntentService,
    PipelineClock,
    ResearchService,
    Warehouse,
    default_resources,
)

LAUNCH = ["campaigns", "leads", "lead_rejects", "recipients", "research_snippets"]
TOUCH = ["drafts", "approvals", "outbox", "sends"]
TRACK = ["delivery_events", "replies"]


class Driver:
    """Materialises asset selections against one instance and database, at a given simulated time."""

    def __init__(self, instance: dg.DagsterInstance, db_path: str | None = None, quiet: bool = True):
        self.instance = instance
        self.quiet = quiet
        self.base = default_resources()
        if db_path:
            # A new resource, not a model copy: Dagster initialises resources from their construction config.
            self.base["warehouse"] = Warehouse(path=db_path)
        self.runs = 0

    def run(self, selection: list[str], now: datetime, partition_key: str | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
        resources = {**self.base, "clock": PipelineClock(now_iso=now.isoformat())}
        if self.quiet:
            run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = dg.materialize([*ASSETS, *ASSET_CHECKS], selection=selection, partition_key=partition_key, instance=self.instance,
                                resources=resources, run_config=run_config, tags={"outbound/simulated_now": now.isoformat()})
        self.runs += 1
        return result

    def track_and_plan(self, campaign: str, now: datetime) -> list[str]:
        """Ingest what happened, then plan: one run, as the sensor and schedule would do in two."""
        result = self.run([*TRACK, "cadence_plan"], now, campaign)
        materialization = result.asset_materializations_for_node("cadence_plan")[0]
        return list(materialization.metadata["due_touches"].value)


def offline_services(resources: dict) -> dict:
    """The external services with every credential removed: the deterministic offline implementations."""
    return {
        "research": ResearchService(cache_dir=resources["research"].cache_dir),
        "composer": ComposeService(),
        "intent": IntentService(),
        "inbox": InboxService(),
        "channels": ChannelService(offline_ledger_dir=resources["channels"].offline_ledger_dir),
    }
