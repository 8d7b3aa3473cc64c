"""Jobs of the review stage.

`review_job` retries a step that met the DuckDB file held by another process, like every job that writes it
(`defs/retries.py`); its refusals (a draft decided twice, no reviewer) are `dg.Failure(allow_retries=False)`,
which another attempt would only repeat, so they end the run at once.
"""

import dagster as dg

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.retries import DUCKDB_RETRY

review_job = dg.define_asset_job("review_job", op_retry_policy=DUCKDB_RETRY, selection=["approvals", "outbox", "sends"],
                                 description="Record review decisions for a touch (config on `approvals`) and send what was approved.")

FOLLOW_COMPOSE = {"ops": {"approvals": {"config": {"follow_compose": True}}}}

review_beside_compose_job = dg.define_asset_job(
    "review_beside_compose_job", op_retry_policy=DUCKDB_RETRY, selection=["approvals"], partitions_def=touch_partitions,
    config=FOLLOW_COMPOSE,
    description="Decide a touch's drafts under the campaign's approval mode as compose stores them (auto mode approves the touch "
                "as it is drafted); started with a launch's first touch.")
