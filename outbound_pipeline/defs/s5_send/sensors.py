"""Sensors of the send stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import beside_first_drafts
from outbound_pipeline.defs.s5_send.jobs import send_beside_review_job


@dg.sensor(job=send_beside_review_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def send_beside_review_sensor(context: dg.SensorEvaluationContext):
    """Once the run that drafts a launch's first touch beside its research has stored its first drafts, a run that sends
    each draft as it is approved, inside the recipients' windows and the channels' limits, until review and compose are
    done."""
    return beside_first_drafts(context, "send-beside-review")
