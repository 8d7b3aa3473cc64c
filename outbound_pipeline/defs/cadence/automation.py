"""Schedules and sensors that keep campaigns moving without anyone at the keyboard.

None of them opens DuckDB: they read Dagster's own instance (partitions, materialisation
metadata) and request runs; the runs do the reading and writing, one at a time.
"""


import dagster as dg

from outbound_pipeline.defs.cadence.scheduling import due_launches, parse_launch_key, scheduled_launches
from outbound_pipeline.partitions import campaign_partitions
from outbound_pipeline.resources import PipelineClock

JOBS = {
    "launch": dg.define_asset_job("launch_job", selection=["campaigns", "leads", "lead_rejects", "recipients", "research_snippets"],
                                  partitions_def=campaign_partitions, description="Launch a campaign: spec, leads, audience, research."),
    "touch": dg.define_asset_job("touch_job", selection=["drafts", "approvals", "outbox", "sends"],
                                 description="Draft, approve (auto mode), queue and send one campaign touch."),
    "review": dg.define_asset_job("review_job", selection=["approvals", "outbox", "sends"],
                                  description="Record review decisions for a touch (config on `approvals`) and send what was approved."),
    "track": dg.define_asset_job("track_job", selection=["delivery_events", "replies"], partitions_def=campaign_partitions,
                                 description="Ingest delivery events and replies for a campaign."),
    "cadence": dg.define_asset_job("cadence_job", selection=["cadence_plan"], partitions_def=campaign_partitions,
                                   description="Find which touches have due leads and open them."),
    "metrics": dg.define_asset_job("metrics_job", selection=["campaign_metrics", "variant_metrics", "funnel_metrics"], description="Roll up campaign metrics."),
}


def _campaigns(instance: dg.DagsterInstance) -> list[str]:
    return list(instance.get_dynamic_partitions(campaign_partitions.name))


@dg.schedule(job=JOBS["cadence"], cron_schedule="*/15 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def cadence_schedule(context: dg.ScheduleEvaluationContext):
    """Every 15 minutes, plan every campaign's next touches."""
    stamp = context.scheduled_execution_time.strftime("%Y%m%d%H%M")
    return [dg.RunRequest(run_key=f"cadence:{c}:{stamp}", partition_key=c) for c in _campaigns(context.instance)]


@dg.schedule(job=JOBS["metrics"], cron_schedule="0 * * * *", default_status=dg.DefaultScheduleStatus.RUNNING)
def metrics_schedule(context: dg.ScheduleEvaluationContext):
    """Hourly metric rollup."""
    return dg.RunRequest(run_key=f"metrics:{context.scheduled_execution_time:%Y%m%d%H}")


@dg.asset_sensor(asset_key=dg.AssetKey("cadence_plan"), job=JOBS["touch"], default_status=dg.DefaultSensorStatus.RUNNING)
def due_touch_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Run every touch that the latest cadence plan found work for."""
    materialization = asset_event.asset_materialization
    due = materialization.metadata.get("due_touches") if materialization else None
    keys = list(due.value) if due is not None else []
    for key in keys:
        yield dg.RunRequest(run_key=f"touch:{key}:{asset_event.run_id}", partition_key=key)


@dg.sensor(job=JOBS["launch"], minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def scheduled_launch_sensor(context: dg.SensorEvaluationContext, clock: PipelineClock):
    """Launch every campaign whose scheduled time (`outbound campaign launch --at`) has come, once."""
    keys = due_launches(context.instance, clock.now())
    if not keys:
        return dg.SkipReason("no scheduled launch is due")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"launch:{key}", partition_key=parse_launch_key(key)[0], tags={"outbound/scheduled_launch": key})
                      for key in keys],
        dynamic_partitions_requests=[scheduled_launches.build_delete_request(keys)],
    )
