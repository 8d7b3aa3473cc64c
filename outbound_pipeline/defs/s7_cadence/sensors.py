"""Sensors of the cadence stage: the plan's due touches become touch runs. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.s7_cadence.jobs import touch_job


@dg.asset_sensor(asset_key=dg.AssetKey("cadence_plan"), job=touch_job, default_status=dg.DefaultSensorStatus.RUNNING)
def due_touch_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """Run every touch that the latest cadence plan found work for."""
    materialization = asset_event.asset_materialization
    due = materialization.metadata.get("due_touches") if materialization else None
    keys = [str(k) for k in due.value] if due is not None and isinstance(due.value, list) else []
    for key in keys:
        yield dg.RunRequest(run_key=f"touch:{key}:{asset_event.run_id}", partition_key=key)
