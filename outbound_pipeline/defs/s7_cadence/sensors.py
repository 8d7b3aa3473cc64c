"""Sensors of the cadence stage: a launch is planned at once, and the plan's due touches become touch runs. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.s7_cadence.jobs import cadence_job, touch_job

LAUNCH_COMPLETES = dg.AssetKey("research_snippets")
"""The last asset a launch materialises: once it lands, the campaign's audience is frozen and ready to be planned."""


@dg.asset_sensor(asset_key=LAUNCH_COMPLETES, job=cadence_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def launched_campaign_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Plan a campaign as soon as its launch lands, however it was launched (the UI's `launch_job`, a scheduled launch, the
    API), so its first touch starts now instead of at the next `cadence_schedule` tick up to 15 minutes later."""
    event = asset_event.dagster_event
    partition = event.partition if event is not None else None
    if not partition:
        return dg.SkipReason("the launch materialisation names no campaign")
    return dg.RunRequest(run_key=f"launched:{partition}:{asset_event.run_id}", partition_key=partition)


@dg.asset_sensor(asset_key=dg.AssetKey("cadence_plan"), job=touch_job, default_status=dg.DefaultSensorStatus.RUNNING)
def due_touch_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Run every touch that the latest cadence plan found work for."""
    materialization = asset_event.asset_materialization
    due = materialization.metadata.get("due_touches") if materialization else None
    keys = [str(k) for k in due.value] if due is not None and isinstance(due.value, list) else []
    for key in keys:
        yield dg.RunRequest(run_key=f"touch:{key}:{asset_event.run_id}", partition_key=key)
