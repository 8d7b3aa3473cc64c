"""Alerts raised to campaign owners: the figures the `campaign_alerts` check judges, kept in `alerts` and emailed.

The check on `campaign_metrics` fails while any campaign is past a line; this asset is the owner's notification of it
(`engine.alerts`): one row per campaign, metric and day, emailed to the campaign's `owner_email` when an email
provider is configured. Only this asset writes `alerts`.
"""

import dagster as dg

from outbound_pipeline.defs.resources import ChannelService, PipelineClock, Warehouse
from outbound_pipeline.defs.s8_metrics.assets import GROUP, every_partition
from outbound_pipeline.engine.alerts import raise_alerts


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, deps=["campaign_metrics", *every_partition("campaigns", "metrics_daily")])
def alerts(context: dg.AssetExecutionContext, warehouse: Warehouse, channels: ChannelService, clock: PipelineClock) -> dg.MaterializeResult:
    """Every campaign past its complaint, opt-out, bounce, failure or delivery-drop line, told to its owner once a day."""
    email = channels.by_name("resend") if channels.resend_api_key else None
    run = raise_alerts(warehouse.connect, clock.now(), email)
    return dg.MaterializeResult(metadata={
        "standing": len(run.standing), "new": run.new, "owners_emailed": run.emailed,
        "details": dg.MetadataValue.md("\n".join(f"- {a.message}" for a in run.standing) or "_every campaign within its lines_"),
    })
