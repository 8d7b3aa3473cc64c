"""Jobs of the compose stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.retries import DUCKDB_RETRY

FOLLOW_RESEARCH = {"ops": {"drafts": {"config": {"follow_research": True}}}}

compose_beside_research_job = dg.define_asset_job(
    "compose_beside_research_job", op_retry_policy=DUCKDB_RETRY, selection=["drafts", "recipient_steps"], partitions_def=touch_partitions,
    config=FOLLOW_RESEARCH,
    description="Draft a campaign's first touch while its launch researches the leads: each lead as soon as its research lands.")
