"""Stage 6, track: delivery events and replies, polled from the providers; the campaign reacts."""


import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.resources import ChannelService, ComposeService, IntentService, PipelineClock, Warehouse
from outbound_pipeline.engine.ingest import poll_providers
from outbound_pipeline.engine.tracking import process_batch

GROUP = "s6_track"


@dg.multi_asset(
    specs=[
        dg.AssetSpec("delivery_events", deps=["sends"], group_name=GROUP, kinds={"duckdb"},
                     description="What happened to each message: sent, delivered, opened, read, bounced, opted out, failed."),
        dg.AssetSpec("replies", deps=["sends"], group_name=GROUP, kinds={"duckdb"},
                     description="Inbound replies with their intent; a reply ends the lead's sequence and notifies its owner."),
    ],
    partitions_def=campaign_partitions,
    pool="duckdb",
)
def track(context: dg.AssetExecutionContext, warehouse: Warehouse, channels: ChannelService, intent: IntentService,
          composer: ComposeService, clock: PipelineClock):
    """Poll each provider for the campaign's messages, store what is new, stop, pause and notify accordingly."""
    campaign_id = context.partition_key
    now = clock.now()
    with warehouse.connect() as con:
        sent = con.execute("SELECT * FROM sends WHERE campaign_id = ? AND status IN ('sent', 'failed')", [campaign_id]).df()
    events, replies = poll_providers(sent, channels.by_name, now) if not sent.empty else (pd.DataFrame(), pd.DataFrame())
    owner_mail = channels.by_name("resend") if channels.resend_api_key else None
    stats = process_batch(warehouse.connect, events, replies, now, intent.provider, composer.provider, owner_mail, intent.max_concurrency)
    with warehouse.connect() as con:
        totals = con.execute("""
            SELECT (SELECT count(*) FROM delivery_events WHERE campaign_id = ?), (SELECT count(*) FROM replies WHERE campaign_id = ?)
        """, [campaign_id, campaign_id]).fetchall()[0]
    yield dg.MaterializeResult(asset_key="delivery_events", metadata={"new_events": stats.events, "events_total": totals[0],
                                                                     "leads_opted_out": stats.opted_out, "leads_invalid": stats.bounced,
                                                                     "suppressions_added": stats.suppressed,
                                                                     "campaigns_paused": stats.paused_campaigns})
    yield dg.MaterializeResult(asset_key="replies", metadata={"new_replies": stats.replies, "replies_total": totals[1],
                                                             "sequences_stopped": stats.stopped, "tickets_opened": stats.tickets,
                                                             "answers_drafted": stats.answers_drafted, "owners_notified": stats.notified,
                                                             "owners_emailed": stats.owners_emailed})
