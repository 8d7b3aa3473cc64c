"""Jobs of the send stage."""

import dagster as dg

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.retries import DUCKDB_RETRY

FOLLOW_REVIEW = {"ops": {"sends": {"config": {"follow_review": True}}}}

send_beside_review_job = dg.define_asset_job(
    "send_beside_review_job", op_retry_policy=DUCKDB_RETRY, selection=["sends"], partitions_def=touch_partitions, config=FOLLOW_REVIEW,
    description="Queue and send a touch's drafts as they are approved, until review and compose are done; started with a "
                "launch's first touch.")
