"""The blocking check between the outbox and the channels: nothing unapproved goes out."""

import dagster as dg

from outbound_pipeline.defs.resources import Warehouse
from outbound_pipeline.defs.s5_send.assets import outbox


@dg.asset_check(asset=outbox, blocking=True, description="Every message waiting to go out has an approval, and carries the approved text.")
def outbox_only_approved(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        bad = con.execute("""
            SELECT s.send_id, s.draft_id,
                   CASE WHEN a.draft_id IS NULL THEN 'no approval row'
                        WHEN a.decision = 'rejected' THEN 'draft was rejected'
                        ELSE 'text differs from the approved text' END AS problem
            FROM sends s LEFT JOIN approvals a USING (draft_id)
            WHERE s.status IN ('pending', 'sending')
              AND (a.draft_id IS NULL OR a.decision NOT IN ('approved', 'edited') OR s.body IS DISTINCT FROM a.final_body
                   OR s.subject IS DISTINCT FROM a.final_subject)
        """).df()
    return dg.AssetCheckResult(
        passed=bad.empty,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"unapproved": len(bad), "examples": dg.MetadataValue.json(bad.head(10).to_dict("records"))},
    )
