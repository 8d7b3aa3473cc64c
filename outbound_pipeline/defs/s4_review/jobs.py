"""Jobs of the review stage.

`review_job` retries a step that met the DuckDB file held by another process, like every job that writes it
(`defs/retries.py`); its refusals (a draft decided twice, no reviewer) are `dg.Failure(allow_retries=False)`,
which another attempt would only repeat, so they end the run at once.
"""

import dagster as dg

from outbound_pipeline.defs.retries import DUCKDB_RETRY

review_job = dg.define_asset_job("review_job", op_retry_policy=DUCKDB_RETRY, selection=["approvals", "outbox", "sends"],
                                 description="Record review decisions for a touch (config on `approvals`) and send what was approved.")
