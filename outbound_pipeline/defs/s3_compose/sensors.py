"""Sensors of the compose stage. Never opens DuckDB."""

import dagster as dg

from outbound_pipeline.defs.runs import AUDIENCE_FROZEN, first_touch_beside_research
from outbound_pipeline.defs.s3_compose.jobs import compose_beside_research_job


@dg.asset_sensor(asset_key=AUDIENCE_FROZEN, job=compose_beside_research_job, minimum_interval_seconds=10,
                 default_status=dg.DefaultSensorStatus.RUNNING)
def compose_beside_research_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """When a launch has frozen a campaign's audience and goes on to research it, start drafting the first touch beside
    the research (a run that drafts each lead as its research lands), instead of after all of it: for a list of
    thousands the touch then takes about as long as its research. The plan that follows the launch still runs the
    touch, which approves and sends what is drafted and drafts whatever this run did not."""
    return first_touch_beside_research(context, asset_event, "compose-beside-research")
