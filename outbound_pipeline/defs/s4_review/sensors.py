"""Sensors of the review stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import beside_first_drafts
from outbound_pipeline.defs.s4_review.jobs import review_beside_compose_job


@dg.sensor(job=review_beside_compose_job, minimum_interval_seconds=10, default_status=dg.DefaultSensorStatus.RUNNING)
def review_beside_compose_sensor(context: dg.SensorEvaluationContext):
    """Once the run that drafts a launch's first touch beside its research has stored its first drafts, a run that
    decides each draft as it is stored: in `auto` mode the touch is approved as it is drafted; in the other modes it
    only records what the mode decides by itself, and what a person approves in the inbox while the touch is drafted is
    sent by the following send run."""
    return beside_first_drafts(context, "review-beside-compose")
