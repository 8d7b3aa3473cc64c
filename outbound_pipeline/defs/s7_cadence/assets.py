"""Stage 7, cadence: which touches have work now; opens the next touch's partition when leads come due."""


import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions, open_touch
from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.domain.touches import REPLY_TOUCH, touch_key
from outbound_pipeline.engine.cadence import CadencePlan, plan_completed, plan_running
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status, transition

GROUP = "s7_cadence"

# What the plan reads: the campaign, its audience and leads (same partition); the drafts, decisions and sends of all its
# touches, and what came back (other partitions: every one of them).
CAMPAIGN_READS = ["campaigns", "leads", "recipients"]
OTHER_READS = ["drafts", "approvals", "sends", "delivery_events", "replies"]


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", kinds={"duckdb"},
          deps=[*CAMPAIGN_READS, *(dg.AssetDep(key, partition_mapping=dg.AllPartitionMapping()) for key in OTHER_READS)])
def cadence_plan(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per touch: leads due for a draft now (routed through the step graph), approved messages still waiting to go out,
    and retries due (which the touch run re-queues).

    Completes the campaign when nothing is left to do (a oneshot also ends `end_after` its launch).
    The `due_touches` metadata is what the `due_touch_sensor` turns into touch runs, so the schedule
    that materialises this asset never opens the database.
    """
    campaign_id = context.partition_key
    now = clock.now()
    plan = CadencePlan()
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        if status == "running":
            plan = plan_running(con, spec, now)
            if plan.completed_because:
                transition(con, campaign_id, "completed", plan.completed_because, "pipeline", now)
                status, plan.touches = "completed", {}
        elif status == "completed":  # a reply after the end still gets its answer (reply_mode ai)
            plan = plan_completed(con, spec)
    due_touches = []
    for touch, work in plan.touches.items():
        if work.get("awaiting_review"):
            open_touch(context.instance, campaign_id, touch)  # reviewers pick it in the launchpad; nothing to run yet
        if work["due"] or work["to_send"]:
            open_touch(context.instance, campaign_id, touch)
            due_touches.append(touch_key(campaign_id, touch))
    return dg.MaterializeResult(metadata={
        "status": status, "now": now.isoformat(), "due_touches": dg.MetadataValue.json(due_touches),
        "plan": dg.MetadataValue.json({("reply" if k == REPLY_TOUCH else str(k)): v for k, v in plan.touches.items()}),
        "leads": dg.MetadataValue.json(plan.states), "retries_due": plan.retries_due, "completed_because": plan.completed_because or "",
    })
