"""Sensors of the send stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import AUDIENCE_FROZEN, launch_researching
from outbound_pipeline.defs.s5_send.jobs import send_beside_review_job
from outbound_pipeline.domain.touches import touch_key


@dg.asset_sensor(asset_key=AUDIENCE_FROZEN, job=send_beside_review_job, minimum_interval_seconds=10,
                 default_status=dg.DefaultSensorStatus.RUNNING)
def send_beside_review_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """With the runs that draft and review a launch's first touch as its research lands, a run that sends each draft as
    it is approved, inside the recipients' windows and the channels' limits, until review and compose are done."""
    campaign = launch_researching(context, asset_event)
    if isinstance(campaign, dg.SkipReason):
        return campaign
    key = touch_key(campaign, 1)
    return dg.RunRequest(run_key=f"send-beside-review:{key}:{asset_event.run_id}", partition_key=key)
