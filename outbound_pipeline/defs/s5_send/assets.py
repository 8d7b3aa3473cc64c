"""Stage 5, send: approved drafts go to the outbox, then to their channel, exactly once.

`sends` is the one writer of the `sends` table: `outbox` queues rows, the `sends` asset re-queues
the touch's retries, delivers, and records results. It also reads tables written further down the
flow (`delivery_events`, `replies`, `suppressions`, `inbound_windows`, written by the tracking
stage), which cannot be declared as dependencies without a cycle in the asset graph.
"""

from typing import Any

import dagster as dg

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.resources import ChannelService, PipelineClock, Warehouse
from outbound_pipeline.defs.runs import materialising_now
from outbound_pipeline.domain.touches import parse_touch_key
from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.engine.outbox import queue_touch
from outbound_pipeline.engine.retries import requeue_retries
from outbound_pipeline.engine.send_following import send_following
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status

GROUP = "s5_send"
UPSTREAM = (dg.AssetKey("approvals"), dg.AssetKey("drafts"))  # what a following send run waits on


class SendConfig(dg.Config):
    """`follow_review`: queue and send each draft as it is approved while this run goes on, until review and compose
    are done, so a touch is sent beside its review instead of after it (launch this run with the review run)."""

    follow_review: bool = False


def _all(*keys: str) -> list[dg.AssetDep]:
    """Campaign-level (or unpartitioned) tables a touch-level asset reads: every partition of them."""
    return [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in keys]


@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="duckdb", kinds={"duckdb"},
          deps=["approvals", "drafts", *_all("leads")])
def outbox(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """A `pending` row in `sends` for every approved or edited draft, carrying the final text. No provider is called here."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    with warehouse.connect() as con:
        added, pending = queue_touch(con, campaign_id, touch, clock.now())
    return dg.MaterializeResult(metadata={"queued": added, "pending": pending})


# In the `sends` pool, not `duckdb`: dispatch opens the file only to mark and record each chunk, never while a provider
# answers, so one campaign's sends (email at 2/s can take an hour) do not hold up other campaigns' runs or tracking.
# One sends step at a time: no two dispatches pick the same pending rows, and the process-wide provider limits hold.
@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="sends", kinds={"duckdb"},
          deps=["outbox", "approvals", "drafts", "recipient_steps", *_all("campaigns", "leads", "recipients")])
def sends(context: dg.AssetExecutionContext, config: SendConfig, warehouse: Warehouse, channels: ChannelService,
          clock: PipelineClock) -> dg.MaterializeResult:
    """Re-queue the touch's retries that are due, then deliver the outbox to each channel inside the recipients' sending
    windows; reconcile anything a crash left in flight."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    now = clock.now()
    requeued = 0
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        if status == "running":
            requeued = requeue_retries(con, spec, now, touch)
    if status not in ("running", "completed"):
        return dg.MaterializeResult(metadata={"sent": 0, "held_because": f"campaign is {status}"})
    queued = 0
    if config.follow_review:
        def review_running() -> bool:
            return any(materialising_now(context.instance, key, context.partition_key) for key in UPSTREAM)

        queued, stats = send_following(warehouse.connect, channels.for_channel, channels.by_name, spec, touch, clock.now,
                                       channels.max_concurrency, review_running, approvals_changed=warehouse.watch("approvals").changed)
    else:
        stats = dispatch(warehouse.connect, channels.for_channel, channels.by_name, spec, touch, now, channels.max_concurrency)
    metadata: dict[str, Any] = {"queued_while_following": queued} if config.follow_review else {}
    metadata |= {
        "sent": stats.sent, "failed": stats.failed, "suppressed": stats.suppressed, "deferred_by_window": stats.deferred,
        "held_by_limit": dg.MetadataValue.json(stats.held_by_limit), "retries_queued": requeued,
        "reconciled_after_crash": stats.reconciled, "cost_usd": round(stats.cost_usd, 4), "by_channel": dg.MetadataValue.json(stats.by_channel),
        "paced_seconds": dg.MetadataValue.json(stats.paced_seconds),
    }
    if stats.uncertain:
        raise dg.Failure(
            description=f"{len(stats.uncertain)} sends have an unknown outcome and stay in 'sending'; the next run reconciles them "
                        "(a Resend send older than 23 hours needs a person: its idempotency key may have expired)",
            allow_retries=False,  # an immediate retry would ask the same provider the same question
            metadata={**metadata, "uncertain": dg.MetadataValue.json(stats.uncertain[:20])},
        )
    return dg.MaterializeResult(metadata=metadata)
