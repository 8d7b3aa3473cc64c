"""Sensors of the send stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import AUDIENCE_FROZEN, first_touch_beside_research
from outbound_pipeline.defs.s5_send.jobs import send_beside_review_job


@dg.asset_sensor(asset_key=AUDIENCE_FROZEN, job=send_beside_review_job, minimum_interval_seconds=10,
                 default_status=dg.DefaultSensorStatus.RUNNING)
def send_beside_review_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """With the runs that draft and review a launch's first touch as its research lands, a run that sends each draft as
    it is approved, inside the recipients' windows and the channels' limits, until review and compose are done."""
    return first_touch_beside_research(context, asset_event, "send-beside-review")
