"""Stage 7, cadence: which touches have work now; opens the next touch's partition when leads come due."""


import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions, open_touch
from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.domain.lifecycle import transition
from outbound_pipeline.domain.routing import campaign_route, duration
from outbound_pipeline.domain.touches import REPLY_TOUCH, touch_key
from outbound_pipeline.engine.ingest import replies_needing_answers
from outbound_pipeline.engine.retries import requeue_retries
from outbound_pipeline.store.campaigns import campaign_spec, campaign_status

GROUP = "s7_cadence"


def reply_plan(con, spec, to_send: int) -> dict[str, int]:
    """The reply touch's work (reply_mode ai): answers to draft, to approve when approval is auto, waiting for a person, to send."""
    if spec.reply_mode != "ai":
        return {"due": 0, "to_send": to_send, "awaiting_review": 0}
    undrafted = len(replies_needing_answers(con, spec.name))
    undecided = con.execute("""SELECT count(*) FROM drafts d WHERE d.campaign_id = ? AND d.touch = ?
                               AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id)""",
                            [spec.name, REPLY_TOUCH]).fetchall()[0][0]
    auto = spec.approval == "auto"
    return {"due": undrafted + (int(undecided) if auto else 0), "to_send": to_send, "awaiting_review": 0 if auto else int(undecided)}


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["replies"], kinds={"duckdb"})
def cadence_plan(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Per touch: leads due for a draft now (routed through the step graph) and approved messages still waiting to go out.

    Also re-queues retries and completes the campaign when nothing is left to do (a oneshot
    also ends `end_after` its launch). The `due_touches` metadata is what the `due_touch_sensor`
    turns into touch runs, so the schedule that materialises this asset never opens the database.
    """
    campaign_id = context.partition_key
    now = clock.now()
    plan: dict[int, dict[str, int]] = {}
    states: dict[str, int] = {}
    requeued, completed = 0, None
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        status = campaign_status(con, campaign_id)
        if status == "running":
            requeued = requeue_retries(con, spec, now)
            routed = campaign_route(con, spec, now)
            states = {k: int(v) for k, v in routed["state"].value_counts().items()}
            waiting = dict(con.execute("""
                SELECT d.touch, count(*) FROM drafts d JOIN approvals a USING (draft_id)
                WHERE d.campaign_id = ? AND a.decision IN ('approved', 'edited')
                  AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id AND s.status NOT IN ('pending', 'sending'))
                GROUP BY d.touch
            """, [campaign_id]).fetchall())
            due = routed[routed["state"] == "due"]["touch"].value_counts()
            for touch in range(1, spec.n_touches + 1):
                plan[touch] = {"due": int(due.get(touch, 0)), "to_send": int(waiting.get(touch, 0))}
            plan[REPLY_TOUCH] = reply_plan(con, spec, int(waiting.get(REPLY_TOUCH, 0)))
            launched = con.execute("SELECT launched_at FROM campaigns WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
            work_left = (states.get("due", 0) + states.get("waiting", 0) + sum(p["to_send"] for p in plan.values())
                         + plan[REPLY_TOUCH]["due"] + plan[REPLY_TOUCH]["awaiting_review"])
            if spec.end_after and now >= launched + duration(spec.end_after):
                completed = f"ended {spec.end_after} after launch"
            elif work_left == 0 and (not spec.end_after or not con.execute(
                    "SELECT count(*) FROM recipients WHERE campaign_id = ? AND status = 'active'", [campaign_id]).fetchall()[0][0]):
                completed = "nothing left to do"  # with end_after, a lead who has not replied yet keeps the campaign open
            if completed:
                transition(con, campaign_id, "completed", completed, "pipeline", now)
                status, plan = "completed", {}
        elif status == "completed":  # a reply after the end still gets its answer (reply_mode ai)
            to_send = con.execute("""
                SELECT count(*) FROM drafts d JOIN approvals a USING (draft_id)
                WHERE d.campaign_id = ? AND d.touch = ? AND a.decision IN ('approved', 'edited')
                  AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.draft_id = d.draft_id AND s.status NOT IN ('pending', 'sending'))
            """, [campaign_id, REPLY_TOUCH]).fetchall()[0][0]
            plan[REPLY_TOUCH] = reply_plan(con, spec, int(to_send))
    due_touches = []
    for touch, work in plan.items():
        if work.get("awaiting_review"):
            open_touch(context.instance, campaign_id, touch)  # reviewers pick it in the launchpad; nothing to run yet
        if work["due"] or work["to_send"]:
            open_touch(context.instance, campaign_id, touch)
            due_touches.append(touch_key(campaign_id, touch))
    return dg.MaterializeResult(metadata={
        "status": status, "now": now.isoformat(), "due_touches": dg.MetadataValue.json(due_touches),
        "plan": dg.MetadataValue.json({("reply" if k == REPLY_TOUCH else str(k)): v for k, v in plan.items()}), "leads": dg.MetadataValue.json(states),
        "retries_queued": requeued, "completed_because": completed or "",
    })
