"""Jobs of the metrics stage."""

import dagster as dg

from outbound_pipeline.defs.retries import DUCKDB_RETRY

metrics_job = dg.define_asset_job("metrics_job", op_retry_policy=DUCKDB_RETRY, selection=["campaign_metrics", "variant_metrics", "funnel_metrics", "alerts", "bi_snapshot"],
                                  description="Roll up campaign metrics, raise alerts to owners, then publish the BI snapshot.")
