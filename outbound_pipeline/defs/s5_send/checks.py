"""The blocking check between the outbox and the channels: nothing unapproved goes out."""

import dagster as dg

from outbound_pipeline.defs.resources import Warehouse
from outbound_pipeline.defs.s5_send.assets import outbox
from outbound_pipeline.store.sends import unapproved_queued


@dg.asset_check(asset=outbox, blocking=True, additional_deps=["approvals"],
                description="Every message waiting to go out has an approval, and carries the approved text.")
def outbox_only_approved(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        bad = unapproved_queued(con)
    return dg.AssetCheckResult(
        passed=bad.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"unapproved": len(bad), "examples": dg.MetadataValue.json(bad.head(10).to_dict("records"))},
    )

