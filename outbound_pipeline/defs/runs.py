"""What the Dagster instance knows about runs, for the definitions that follow another stage's runs."""

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import PARTITION_NAME_TAG

from outbound_pipeline.domain.touches import touch_key


def _event_assets(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> set[dg.AssetKey]:
    records = instance.get_records_for_run(run_id, of_type=event_type).records
    return {r.event_log_entry.dagster_event.asset_key for r in records
            if r.event_log_entry.dagster_event is not None and r.event_log_entry.dagster_event.asset_key is not None}


def planned_assets(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialise (its planned events: a run's selection is not always recorded on it)."""
    return _event_assets(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)


NOT_FINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, *IN_PROGRESS_RUN_STATUSES]


def materialised_in(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run has materialised so far."""
    return _event_assets(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)


def materialising_now(instance: dg.DagsterInstance, asset: dg.AssetKey, partition: str) -> bool:
    """Whether a run queued or in progress sets out to materialise `asset` for `partition` and has not done it yet.

    A run whose step for `asset` is over does not count, though the run goes on: a `review_job` run waiting for the
    `sends` pool a following send run holds must not keep that follower waiting for it."""
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED, tags={PARTITION_NAME_TAG: partition}))
    return any(asset in planned_assets(instance, run.run_id) and asset not in materialised_in(instance, run.run_id) for run in runs)


LAUNCH_BEGUN = dg.AssetKey("campaigns")
"""Materialised first by a launch: compose's run starts then, so it is running when research's first answers land."""
AUDIENCE_FROZEN = dg.AssetKey("recipients")
"""Materialised by a launch just before it researches the audience: review and sending start then (they catch up on
what compose did meanwhile; compose cannot, held to the same rate as research)."""
RESEARCH = dg.AssetKey("research_snippets")


def first_touch_beside_research(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry,
                                 run_key_prefix: str) -> dg.RunRequest | dg.SkipReason:
    """A run for the first touch of the campaign whose launch (`asset_event`: its `campaigns` or `recipients` step) goes on
    to research the audience, for the sensors that start the touch's stages beside the research; a run that does not
    research starts nothing. The touch's partition is opened by the launch's `campaigns` step."""
    event = asset_event.dagster_event
    campaign = event.partition if event is not None else None
    if not campaign:
        return dg.SkipReason("the materialisation names no campaign")
    if RESEARCH not in planned_assets(context.instance, asset_event.run_id):
        return dg.SkipReason(f"{campaign} was refreshed by a run that does not research its audience")
    key = touch_key(campaign, 1)
    return dg.RunRequest(run_key=f"{run_key_prefix}:{key}:{asset_event.run_id}", partition_key=key)
