"""Stage 9, dial: one unpartitioned step over every running voice campaign, so the organisation-wide limit holds.

The step reads what the receiver landed (call callbacks, conversation turns), reconciles open calls with the provider,
closes calls with no completion, and places the calls the limits allow (`engine.dialer`). It opens the database only
to read and write, never while the provider is asked. `call_metrics` rolls the calls up per campaign.
"""

from typing import Any

import dagster as dg

from outbound_pipeline.defs.resources import CampaignCatalog, PipelineClock, Warehouse
from outbound_pipeline.defs.voice_resources import VoiceService
from outbound_pipeline.engine.dialer import dial as dial_pass
from outbound_pipeline.store.calls import call_metrics_frame, replace_call_metrics

GROUP = "s9_dial"
READS = [dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in ("campaigns", "leads", "recipients", "research_snippets")]
DIAL_READS = [*READS, dg.AssetDep("suppressions")]


@dg.multi_asset(
    name="dial",
    specs=[
        dg.AssetSpec("call_contacts", deps=DIAL_READS, group_name=GROUP, kinds={"duckdb"},
                     description="Each voice campaign's contacts: pending, calling, completed, failed, no_answer or voicemail, "
                                 "attempts and when a retry is due."),
        dg.AssetSpec("calls", deps=DIAL_READS, group_name=GROUP, kinds={"duckdb"},
                     description="Every call placed: caller ID, who answered, duration, billed minutes and cost, the agent's outcome."),
        dg.AssetSpec("call_turns", deps=DIAL_READS, group_name=GROUP, kinds={"duckdb"},
                     description="Every turn of every conversation, so a call can be read back."),
    ],
    # Not in the `duckdb` pool, like the other steps that wait on providers: it opens the file only for short units of
    # work around the provider calls, never during them (the lock wait covers a writer that holds it meanwhile).
)
def dial(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock, voice: VoiceService,
         catalog: CampaignCatalog):
    """Take in call results, then place the calls every limit allows: campaign max_concurrent, the agent's
    max_concurrent_calls and the organisation's outbound rate limit, across all running voice campaigns."""
    stats = dial_pass(warehouse.connect, voice.dialer(), voice.config(catalog.leads_dir), clock.now())
    for warning in stats.warnings:
        context.log.warning(warning)
    meta: dict[str, Any] = {"landed": stats.landed, "updates": stats.updates, "ended": stats.ended, "timed_out": stats.timed_out,
            "queued": stats.queued, "placed": stats.placed, "refused": stats.refused, "turns": stats.turns,
            "opt_outs": stats.opt_outs, "in_flight": dg.MetadataValue.json(stats.in_flight),
            "completed_campaigns": dg.MetadataValue.json(stats.completed_campaigns)}
    for key in ("call_contacts", "calls", "call_turns"):
        yield dg.MaterializeResult(asset_key=key, metadata=meta)


@dg.asset(group_name=GROUP, pool="duckdb", deps=["calls", "call_contacts"], kinds={"duckdb"})
def call_metrics(warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per voice campaign: calls placed, answered by a person, voicemail, no answer, failed, average duration, billed
    minutes, cost and cost per minute, and the agent's outcomes."""
    with warehouse.connect() as con:
        frame = call_metrics_frame(con, clock.now())
        replace_call_metrics(con, frame)
    return dg.MaterializeResult(metadata={"campaigns": len(frame), "calls_placed": int(frame["calls_placed"].sum()) if len(frame) else 0})
