"""Jobs of the cadence stage: planning, and the touch it opens (draft, approve, queue, send)."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.retries import DUCKDB_RETRY

touch_job = dg.define_asset_job("touch_job", op_retry_policy=DUCKDB_RETRY, selection=["drafts", "approvals", "outbox", "sends"],
                                description="Draft, approve (auto mode), queue and send one campaign touch.")
cadence_job = dg.define_asset_job("cadence_job", op_retry_policy=DUCKDB_RETRY, selection=["cadence_plan"], partitions_def=campaign_partitions,
                                  description="Find which touches have due leads and open them.")
