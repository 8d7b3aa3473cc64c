"""Jobs of the metrics stage."""

import dagster as dg

metrics_job = dg.define_asset_job("metrics_job", selection=["campaign_metrics", "variant_metrics", "funnel_metrics", "bi_snapshot"],
                                  description="Roll up campaign metrics, then publish the BI snapshot.")
