"""Drives a campaign through its Dagster runs: launch, track and plan, touches, metrics.

The same selections the schedules and sensors request in production, materialised in-process
against one instance and database at a chosen time; used by `outbound campaign launch`,
`outbound review send`, the offline demo and the tests. It also prepares the Dagster instance
(`DAGSTER_HOME`) that the command line records its runs in.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterMaxRetriesExceededError
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from outbound_pipeline import settings
from outbound_pipeline.definitions import ASSET_CHECKS, ASSETS
from outbound_pipeline.defs.resources import (
    CampaignCatalog,
    ChannelService,
    ComposeService,
    InboxService,
    IntentService,
    PipelineClock,
    ResearchService,
    Warehouse,
    default_resources,
)
from outbound_pipeline.defs.retries import DRIVER_RETRY
from outbound_pipeline.defs.s1_audience.jobs import LAUNCH_SELECTION
from outbound_pipeline.defs.voice_resources import VoiceService

LAUNCH = LAUNCH_SELECTION
TOUCH = ["drafts", "recipient_steps", "approvals", "outbox", "sends"]
SEND = ["outbox", "sends"]  # queue and send what is approved, behind the blocking check `outbox_only_approved`
TRACK = ["delivery_events", "replies"]  # the `track` run also writes suppressions, inbound_windows, tickets, notifications
DIAL = ["call_contacts", "calls", "call_turns"]  # one pass of the dialer over every running voice campaign
METRICS = ["campaign_metrics", "variant_metrics", "funnel_metrics", "alerts"]  # as the hourly metrics job, before its snapshot


RUN_JOB = "__ephemeral_asset_job__"  # the name dg.materialize gives its runs


def daily_range(first: datetime, last: datetime) -> dict[str, str]:
    """Run tags selecting every daily partition from `first`'s day to `last`'s: `metrics_daily` counts them in one run."""
    return {ASSET_PARTITION_RANGE_START_TAG: f"{first:%Y-%m-%d}", ASSET_PARTITION_RANGE_END_TAG: f"{last:%Y-%m-%d}"}


def track_config(*campaigns: str) -> dict[str, Any]:
    """Run config for a TRACK run polling these campaigns' providers (as `tracking_sensor` requests it)."""
    return {"ops": {"track": {"config": {"campaigns": list(campaigns)}}}}

# Every asset and check of the code location, as `dg.materialize` takes them.
DEFINITIONS: list[dg.AssetsDefinition | dg.AssetChecksDefinition] = [
    *(a for a in ASSETS if isinstance(a, dg.AssetsDefinition)), *ASSET_CHECKS,
]


def ensure_dagster_home() -> Path:
    """DAGSTER_HOME (default data/dagster_home), holding the repo's dagster.yaml."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(settings.DATA_DIR / "dagster_home"))).resolve()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    source = settings.REPO_ROOT / "dagster.yaml"
    if not config.exists() and source.exists():
        shutil.copyfile(source, config)
    return home


def pipeline_now() -> datetime:
    """The pipeline clock as the command line reads it: `OUTBOUND_NOW` when pinned, else the wall clock (naive UTC)."""
    return PipelineClock(now_iso=os.environ.get("OUTBOUND_NOW") or None).now()


def dagster_instance() -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, where the command line records its runs."""
    ensure_dagster_home()
    return dg.DagsterInstance.get()


class Driver:
    """Materialises asset selections against one instance and database, at a given time.

    `simulated` runs (demo, tests) carry the simulated time they ran at as a tag. Every step is retried under
    `retry_policy` (default `DRIVER_RETRY`), so a step that met the DuckDB file held by another process
    (`WarehouseBusy`, nothing written) runs again after a backoff instead of failing the run.
    """

    def __init__(self, instance: dg.DagsterInstance, db_path: str | None = None, quiet: bool = True, simulated: bool = True,
                 retry_policy: dg.RetryPolicy | None = DRIVER_RETRY):
        self.instance = instance
        self.quiet = quiet
        self.simulated = simulated
        self.retry_policy = retry_policy
        self.base: dict[str, Any] = default_resources()
        if db_path:
            # A new resource, not a model copy: Dagster initialises resources from their construction config.
            self.base["warehouse"] = Warehouse(path=db_path)
        self.runs = 0

    @property
    def db_path(self) -> str:
        warehouse: Warehouse = self.base["warehouse"]
        return warehouse.path

    def run(self, selection: list[str], now: datetime, partition_key: str | None = None, run_config: dict | None = None,
            tags: dict[str, str] | None = None, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        resources = {**self.base, "clock": PipelineClock(now_iso=now.isoformat())}
        if self.quiet:
            run_config = {**(run_config or {}), "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        run_tags = {**({"outbound/simulated_now": now.isoformat()} if self.simulated else {}), **(tags or {})}
        # As dg.materialize does, with the retry policy on the job.
        job = dg.Definitions(assets=DEFINITIONS, resources=resources, jobs=[
            dg.define_asset_job(RUN_JOB, selection=selection, op_retry_policy=self.retry_policy)]).resolve_job_def(RUN_JOB)
        try:
            result = job.execute_in_process(run_config=run_config, instance=self.instance, partition_key=partition_key,
                                            raise_on_error=raise_on_error, tags=run_tags)
        except DagsterMaxRetriesExceededError as exc:  # the step's own error after its last attempt, as without retries
            retried = exc.__context__
            original = retried.__cause__ if retried is not None else None
            if isinstance(original, Exception):
                raise original from None
            raise
        self.runs += 1
        return result

    def start(self, campaign: str, now: datetime, tags: dict[str, str] | None = None) -> list[str]:
        """Plan a campaign just launched and run the touches found due, so its first messages (or drafts awaiting review)
        appear now rather than at the next cadence tick; returns the touches run."""
        catalog: CampaignCatalog = self.base["catalog"]
        if catalog.spec(campaign).is_voice:  # calls: one pass of the dialer places the first ones
            self.run(DIAL, now, tags=tags)
            return ["dial"]
        result = self.run(["cadence_plan"], now, campaign, tags=tags)
        due = list(result.asset_materializations_for_node("cadence_plan")[0].metadata["due_touches"].value)  # type: ignore[arg-type]
        for key in due:
            self.run(TOUCH, now, key, tags=tags)
        return due

    def track_and_plan(self, campaign: str, now: datetime) -> list[str]:
        """Ingest what happened, then plan: one run, as the sensor and schedule would do in two."""
        result = self.run([*TRACK, "cadence_plan"], now, campaign, run_config=track_config(campaign))
        materialization = result.asset_materializations_for_node("cadence_plan")[0]
        return list(materialization.metadata["due_touches"].value)  # type: ignore[arg-type]


def offline_services(resources: dict[str, Any]) -> dict[str, dg.ConfigurableResource]:
    """The external services with every credential removed: the deterministic offline implementations."""
    return {
        "research": ResearchService(cache_dir=resources["research"].cache_dir),
        "composer": ComposeService(),
        "intent": IntentService(),
        "inbox": InboxService(),
        "channels": ChannelService(offline_ledger_dir=resources["channels"].offline_ledger_dir),
        "voice": VoiceService(offline_ledger_dir=resources["voice"].offline_ledger_dir, landing_dir=resources["voice"].landing_dir,
                              org_limit=resources["voice"].org_limit),
    }
