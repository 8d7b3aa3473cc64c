"""Jobs of the review stage."""

import dagster as dg

from outbound_pipeline.defs.retries import DUCKDB_RETRY

review_job = dg.define_asset_job("review_job", op_retry_policy=DUCKDB_RETRY, selection=["approvals", "outbox", "sends"],
                                 description="Record review decisions for a touch (config on `approvals`) and send what was approved.")
