"""Jobs of the audience stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.retries import DUCKDB_RETRY

LAUNCH_SELECTION = ["campaigns", "campaign_events", "leads", "lead_rejects", "recipients", "research_snippets"]

launch_job = dg.define_asset_job("launch_job", op_retry_policy=DUCKDB_RETRY, selection=LAUNCH_SELECTION, partitions_def=campaign_partitions,
                                 description="Launch a campaign: spec, leads, audience, research.")
