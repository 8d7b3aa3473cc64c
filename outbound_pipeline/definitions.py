"""The one `Definitions` of the code location: every stage's assets, jobs, schedules and sensors."""

from __future__ import annotations

import dagster as dg

from outbound_pipeline.defs.cadence.assets import cadence_plan
from outbound_pipeline.defs.cadence.automation import JOBS, cadence_schedule, due_touch_sensor, metrics_schedule, scheduled_launch_sensor
from outbound_pipeline.defs.cadence.campaign_files import campaign_file_sensor
from outbound_pipeline.defs.compose.assets import drafts
from outbound_pipeline.defs.leads.assets import campaigns, import_leads, recipients
from outbound_pipeline.defs.metrics.assets import campaign_metrics
from outbound_pipeline.defs.metrics.funnel import funnel_metrics
from outbound_pipeline.defs.metrics.variants import variant_metrics
from outbound_pipeline.defs.research.assets import research_snippets
from outbound_pipeline.defs.review.assets import approvals
from outbound_pipeline.defs.send.assets import outbox, outbox_only_approved, sends
from outbound_pipeline.defs.track.assets import track
from outbound_pipeline.defs.track.landed import landed_records
from outbound_pipeline.defs.track.sensors import inbound_poll_sensor, landing_job, landing_sensor, tracking_sensor
from outbound_pipeline.resources import default_resources

# In stage order: a lead goes from the CSV (import) to a metric (metrics) down this list.
ASSETS = [campaigns, import_leads, recipients, research_snippets, drafts, approvals, outbox, sends, track, landed_records, cadence_plan, campaign_metrics, variant_metrics, funnel_metrics]

defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=[outbox_only_approved],
    jobs=[*JOBS.values(), landing_job],
    schedules=[cadence_schedule, metrics_schedule],
    sensors=[tracking_sensor, landing_sensor, inbound_poll_sensor, due_touch_sensor, scheduled_launch_sensor,
             campaign_file_sensor],
    resources=default_resources(),
)
