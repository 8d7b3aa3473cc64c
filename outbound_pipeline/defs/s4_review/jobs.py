"""Jobs of the review stage."""

import dagster as dg

review_job = dg.define_asset_job("review_job", selection=["approvals", "outbox", "sends"],
                                 description="Record review decisions for a touch (config on `approvals`) and send what was approved.")
