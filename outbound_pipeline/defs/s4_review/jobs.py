"""Jobs of the review stage.

`review_job` has no retry policy: a person launches it with decisions as config, and its refusals (a draft
decided twice, no reviewer) are plain errors that another attempt would only repeat.
"""

import dagster as dg

review_job = dg.define_asset_job("review_job", selection=["approvals", "outbox", "sends"],
                                 description="Record review decisions for a touch (config on `approvals`) and send what was approved.")
