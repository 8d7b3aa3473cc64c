"""What the Dagster instance knows about runs, for the definitions that follow another stage's runs."""

import dagster as dg
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from dagster._core.storage.tags import PARTITION_NAME_TAG

from outbound_pipeline.defs.partitions import CAMPAIGN_TOUCHES, touch_partitions
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


AUDIENCE = dg.AssetKey("recipients")
RESEARCH = dg.AssetKey("research_snippets")
DRAFTS = dg.AssetKey("drafts")
FIRST_DRAFTS = "first_drafts_stored"  # metadata of the `drafts` observation a compose run following research logs once


def first_touch_with_launch(instance: dg.DagsterInstance, run: dg.DagsterRun, run_key_prefix: str) -> dg.SensorResult | dg.SkipReason:
    """A run for the first touch of the campaign a starting run launches (it freezes the audience and researches it),
    with the touch's partition opened if the launch has not opened it yet; any other run starts nothing. Compose's run
    starts so, with the launch, to be running when research's first answers land. The run may not have begun yet: its
    planned events are logged when it is created, and `materialising_now` counts it from then on."""
    campaign = run.tags.get(PARTITION_NAME_TAG)
    planned = planned_assets(instance, run.run_id)
    if not campaign or not {AUDIENCE, RESEARCH} <= planned:
        return dg.SkipReason(f"run {run.run_id} does not launch a campaign (it does not freeze and research an audience)")
    key = touch_key(campaign, 1)
    opening = [] if instance.has_dynamic_partition(CAMPAIGN_TOUCHES, key) else [touch_partitions.build_add_request([key])]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"{run_key_prefix}:{key}:{run.run_id}", partition_key=key)],
                           dynamic_partitions_requests=opening)


def first_drafts_stored(touch_key: str, stored: int) -> dg.AssetObservation:
    """What a compose run following research logs once it has stored its first drafts: review and sending start then,
    not with compose, whose start their own would slow (they catch up on what it drafted meanwhile; it could not catch
    up on research, held to the same rate)."""
    return dg.AssetObservation(asset_key=DRAFTS, partition=touch_key, metadata={FIRST_DRAFTS: stored})


def beside_first_drafts(context: dg.SensorEvaluationContext, run_key_prefix: str) -> dg.SensorResult | dg.SkipReason:
    """A run for each touch whose compose run, following research, stored its first drafts since the last tick, for the
    sensors that start review and sending beside it. A first tick (no cursor) takes up only compose runs still going."""
    after = int(context.cursor) if context.cursor else None
    found = context.instance.fetch_observations(dg.AssetRecordsFilter(asset_key=DRAFTS, after_storage_id=after), limit=100,
                                                ascending=True).records
    if not found:
        return dg.SkipReason("no compose run has stored its first drafts since the last tick")
    going = None if after is not None else {
        run.run_id for run in context.instance.get_runs(filters=dg.RunsFilter(run_ids=list({r.run_id for r in found}), statuses=NOT_FINISHED))}
    requests = [
        dg.RunRequest(run_key=f"{run_key_prefix}:{record.partition_key}:{record.run_id}", partition_key=record.partition_key)
        for record in found
        if record.asset_observation is not None and FIRST_DRAFTS in record.asset_observation.metadata and record.partition_key
        and (going is None or record.run_id in going)
    ]
    return dg.SensorResult(run_requests=requests, cursor=str(found[-1].storage_id))
