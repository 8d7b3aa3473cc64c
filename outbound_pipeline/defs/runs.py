"""What the Dagster instance knows about runs, for the definitions that follow another stage's runs."""

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import PARTITION_NAME_TAG


def planned_assets(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialise (its planned events: a run's selection is not always recorded on it)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED).records
    return {r.event_log_entry.dagster_event.asset_key for r in records
            if r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.asset_key is not None}


def materialising_now(instance: dg.DagsterInstance, asset: dg.AssetKey, partition: str) -> bool:
    """Whether a run queued or in progress sets out to materialise `asset` for `partition`."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES), tags={PARTITION_NAME_TAG: partition}))
    return any(asset in planned_assets(instance, run.run_id) for run in runs)
