"""Stage 5, send: approved drafts go to the outbox, then to their channel, exactly once."""


import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.resources import ChannelService, PipelineClock, Warehouse
from outbound_pipeline.domain.touches import parse_touch_key
from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status
from outbound_pipeline.store.warehouse import insert_new

GROUP = "s5_send"


@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="duckdb", deps=["approvals"], kinds={"duckdb"})
def outbox(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """A `pending` row in `sends` for every approved or edited draft, carrying the final text. No provider is called here."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    now = clock.now()
    with warehouse.connect() as con:
        rows = con.execute("""
            SELECT d.draft_id, d.campaign_id, d.touch, d.lead_id, d.channel,
                   CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address,
                   a.final_subject AS subject, a.final_body AS body
            FROM drafts d JOIN approvals a USING (draft_id) JOIN leads l USING (lead_id)
            WHERE d.campaign_id = ? AND d.touch = ? AND a.decision IN ('approved', 'edited')
              AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id)
        """, [campaign_id, touch]).df()
        frame = rows.assign(
            send_id=rows["draft_id"].str.replace("drf_", "snd_", regex=False), status="pending", provider=None,
            provider_message_id=None, error_code=None, error_message=None, segments=pd.NA, cost_usd=0.0, attempts=0,
            recorded_at=now, sent_at=None, updated_at=now,
        )
        added = insert_new(con, "sends", frame)
        pending = con.execute("SELECT count(*) FROM sends WHERE campaign_id = ? AND touch = ? AND status IN ('pending', 'sending')",
                              [campaign_id, touch]).fetchall()[0][0]
    return dg.MaterializeResult(metadata={"queued": added, "pending": pending})


@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="duckdb", deps=["outbox"], kinds={"duckdb"})
def sends(context: dg.AssetExecutionContext, warehouse: Warehouse, channels: ChannelService, clock: PipelineClock) -> dg.MaterializeResult:
    """Deliver the outbox to each channel inside the recipients' sending windows; reconcile anything a crash left in flight."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    now = clock.now()
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
    if status not in ("running", "completed"):
        return dg.MaterializeResult(metadata={"sent": 0, "held_because": f"campaign is {status}"})
    stats = dispatch(warehouse.connect, channels.for_channel, channels.by_name, spec, touch, now, channels.max_concurrency)
    metadata = {
        "sent": stats.sent, "failed": stats.failed, "suppressed": stats.suppressed, "deferred_by_window": stats.deferred,
        "held_by_limit": dg.MetadataValue.json(stats.held_by_limit),
        "reconciled_after_crash": stats.reconciled, "cost_usd": round(stats.cost_usd, 4), "by_channel": dg.MetadataValue.json(stats.by_channel),
        "paced_seconds": dg.MetadataValue.json(stats.paced_seconds),
    }
    if stats.uncertain:
        raise dg.Failure(
            description=f"{len(stats.uncertain)} sends have an unknown outcome and stay in 'sending'; the next run reconciles them",
            metadata={**metadata, "uncertain": dg.MetadataValue.json(stats.uncertain[:20])},
        )
    return dg.MaterializeResult(metadata=metadata)
