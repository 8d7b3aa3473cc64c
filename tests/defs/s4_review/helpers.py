"""Running the real `review_job` (and other jobs) the way the launchpad does, against the test resources."""

from __future__ import annotations

from datetime import datetime

import dagster as dg

from outbound_pipeline.definitions import ASSET_CHECKS, ASSETS
from outbound_pipeline.defs.resources import PipelineClock
from outbound_pipeline.defs.s4_review.jobs import review_job
from outbound_pipeline.providers.channel_offline import OfflineChannel
from outbound_pipeline.runner import Driver
from tests.conftest import MONDAY_MORNING


def launch_review(driver: Driver, key: str, config: dict | None = None, tags: dict | None = None,
                  now: datetime = MONDAY_MORNING) -> dg.ExecuteInProcessResult:
    """`review_job` for a touch partition with launchpad run config `{"ops": {"approvals": {"config": ...}}}`."""
    defs = dg.Definitions(assets=ASSETS, asset_checks=ASSET_CHECKS, jobs=[review_job],
                          resources={**driver.base, "clock": PipelineClock(now_iso=now.isoformat())})
    run_config = {"ops": {"approvals": {"config": config}}} if config is not None else {}
    return defs.resolve_job_def("review_job").execute_in_process(
        run_config=run_config, partition_key=key, instance=driver.instance, tags=tags or {}, raise_on_error=False)


def materialize(driver: Driver, selection: list[str], key: str, now: datetime = MONDAY_MORNING) -> dg.ExecuteInProcessResult:
    """Like `driver.run`, but a failed step or check is returned, not raised."""
    return dg.materialize([*ASSETS, *ASSET_CHECKS], selection=selection, partition_key=key, instance=driver.instance,
                          resources={**driver.base, "clock": PipelineClock(now_iso=now.isoformat())}, raise_on_error=False)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure of a run, description and error, as one string to match against."""
    parts = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            parts.append(f"{data.user_failure_data.description if data.user_failure_data else ''} {data.error.message if data.error else ''}")
    return "\n".join(parts)


def ledger(driver: Driver) -> list[str]:
    """Idempotency keys (send ids) the offline provider accepted."""
    channel = driver.base["channels"].by_name("offline")
    assert isinstance(channel, OfflineChannel)
    return channel.accepted_keys()
