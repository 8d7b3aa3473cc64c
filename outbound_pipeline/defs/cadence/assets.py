"""Stage 7, cadence: which touches have work now; opens the next touch's partition when leads come due."""


import dagster as dg

from outbound_pipeline.defs.cadence.due import due_leads
from outbound_pipeline.partitions import campaign_partitions, open_touch, touch_key
from outbound_pipeline.resources import PipelineClock, Warehouse
from outbound_pipeline.store.reads import campaign_spec, campaign_status

GROUP = "s7_cadence"


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["replies"], kinds={"duckdb"})
def cadence_plan(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per touch: leads due for a draft now (no reply, delay passed) and approved messages still waiting to go out.

    The `due_touches` metadata is what the `due_touch_sensor` turns into touch runs, so the
    schedule that materialises this asset never has to open the database itself.
    """
    campaign_id = context.partition_key
    now = clock.now()
    plan = {}
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        waiting = dict(con.execute("""
            SELECT d.touch, count(*) FROM drafts d JOIN approvals a USING (draft_id)
            WHERE d.campaign_id = ? AND a.decision IN ('approved', 'edited')
              AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id AND s.status NOT IN ('pending', 'sending'))
            GROUP BY d.touch
        """, [campaign_id]).fetchall())
        if status == "running":
            for touch in range(1, spec.n_touches + 1):
                plan[touch] = {"due": len(due_leads(con, spec, touch, now)), "to_send": int(waiting.get(touch, 0))}
    due_touches = []
    for touch, work in plan.items():
        if work["due"] or work["to_send"]:
            open_touch(context.instance, campaign_id, touch)
            due_touches.append(touch_key(campaign_id, touch))
    return dg.MaterializeResult(metadata={
        "status": status, "now": now.isoformat(), "due_touches": dg.MetadataValue.json(due_touches),
        "plan": dg.MetadataValue.json({str(k): v for k, v in plan.items()}),
    })
