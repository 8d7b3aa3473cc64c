"""Alerts on the campaign metrics: a figure past its line fails the check, campaign by campaign, with the reason in words.

Complaint rate above 0.3 % (Gmail's bulk-sender line), opt-out, bounce and failure rates above theirs, and a day whose
messages were delivered ten points worse than the campaign so far (`domain.metrics.alerts`). The bounce-rate auto-pause
of tracking stays as it is; this check is what an owner sees in the Dagster UI and its alerting.
"""

import dagster as dg

from outbound_pipeline.defs.resources import Warehouse
from outbound_pipeline.defs.s8_metrics.assets import campaign_metrics
from outbound_pipeline.domain.metrics import alerts
from outbound_pipeline.store.metrics import alert_counts


@dg.asset_check(asset=campaign_metrics, blocking=False, additional_deps=["metrics_daily"],
                description="No campaign past the complaint, opt-out, bounce, failure or delivery-drop lines.")
def campaign_alerts(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        current, previous = alert_counts(con)
    found = [a for campaign, counts in current.items() for a in alerts(campaign, counts, previous.get(campaign))]
    return dg.AssetCheckResult(
        passed=not found, severity=dg.AssetCheckSeverity.WARN,
        metadata={"alerts": len(found), "campaigns": len(current),
                  "details": dg.MetadataValue.md("\n".join(f"- {a.message}" for a in found) or "_every campaign within its lines_")},
    )
