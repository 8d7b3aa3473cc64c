"""The cadence: who is due for which touch now, and the plan of work per touch that opens touch runs.

Routing (`domain.routing`) runs over the campaign's lead states as they will be once the retries
due now are re-queued (`engine.retries.planned_retries`): the touch run writes those, the plan only
counts them, so both agree on which leads are still waiting for a message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.routing import duration, route, with_requeued
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.engine.retries import planned_retries
from outbound_pipeline.store import routing as store
from outbound_pipeline.store.events import replies_needing_answers


def campaign_route(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime,
                   retries: pd.DataFrame | None = None) -> pd.DataFrame:
    """`domain.routing.route` over the campaign's recipients, with the retries due now (`retries`, planned when not given)."""
    retries = planned_retries(con, spec, now) if retries is None else retries
    return route(with_requeued(store.lead_states(con, spec.name), retries), spec, now)


def due_leads(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, touch: int, now: datetime,
              routed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Leads (rows of `leads`, plus `route_via` and `route_seq`) due for `touch` now and not drafted for it yet."""
    routed = campaign_route(con, spec, now) if routed is None else routed
    due = routed[(routed["state"] == "due") & (routed["touch"] == touch)][["lead_id", "via", "seq"]]
    return store.undrafted_leads(con, spec.name, touch, due.rename(columns={"via": "route_via", "seq": "route_seq"}))


@dataclass
class CadencePlan:
    """Per touch: `due` (leads to draft), `to_send` (approved messages waiting to go out, and retries for the touch run to
    re-queue or close), and for the
    reply touch `awaiting_review`; the lead states counted; retries due; why the campaign completed, if it did."""

    touches: dict[int, dict[str, int]] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    retries_due: int = 0
    completed_because: str | None = None

    def work_left(self) -> int:
        reply = self.touches.get(REPLY_TOUCH, {})
        return (self.states.get("due", 0) + self.states.get("waiting", 0) + sum(p["to_send"] for p in self.touches.values())
                + reply.get("due", 0) + reply.get("awaiting_review", 0))


def reply_plan(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, to_send: int) -> dict[str, int]:
    """The reply touch's work (reply_mode ai): answers to draft, to approve when approval is auto, waiting for a person, to send."""
    if spec.reply_mode != "ai":
        return {"due": 0, "to_send": to_send, "awaiting_review": 0}
    undrafted = len(replies_needing_answers(con, spec.name))
    undecided = store.undecided_drafts(con, spec.name, REPLY_TOUCH)
    auto = spec.approval == "auto"
    return {"due": undrafted + (undecided if auto else 0), "to_send": to_send, "awaiting_review": 0 if auto else undecided}


def _retries_per_touch(retries: pd.DataFrame) -> dict[int, int]:
    """Planned retries per touch: the sends going out again, and the 63016 failures the touch run records as final."""
    return dict(Counter(int(t) for t in retries["touch"].tolist()))


def plan_running(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, now: datetime) -> CadencePlan:
    """The plan of a running campaign, and whether it is finished: nothing left to do, or (a oneshot) `end_after` its launch.
    With `end_after`, a lead who has not replied yet keeps the campaign open until then."""
    if spec.is_voice:  # the dial step (s9) calls a voice campaign's contacts and completes it
        return CadencePlan()
    retries = planned_retries(con, spec, now)
    routed = campaign_route(con, spec, now, retries)
    plan = CadencePlan(states={str(k): int(v) for k, v in routed["state"].value_counts().items()},
                       retries_due=int((retries["status"] == "pending").sum()))
    waiting = store.approved_unsent(con, spec.name)
    retrying = _retries_per_touch(retries)
    due = routed[routed["state"] == "due"]["touch"].value_counts()
    for touch in range(1, spec.n_touches + 1):
        plan.touches[touch] = {"due": int(due.get(touch, 0)), "to_send": waiting.get(touch, 0) + retrying.get(touch, 0)}
    plan.touches[REPLY_TOUCH] = reply_plan(con, spec, waiting.get(REPLY_TOUCH, 0) + retrying.get(REPLY_TOUCH, 0))
    launched = store.launched_at(con, spec.name)
    if spec.end_after and launched is not None and now >= launched + duration(spec.end_after):
        plan.completed_because = f"ended {spec.end_after} after launch"
    elif plan.work_left() == 0 and (not spec.end_after or not store.active_recipients(con, spec.name)):
        plan.completed_because = "nothing left to do"
    return plan


def plan_completed(con: duckdb.DuckDBPyConnection, spec: CampaignSpec) -> CadencePlan:
    """A completed campaign still answers replies that arrive after its end (reply_mode ai)."""
    to_send = store.approved_unsent(con, spec.name, REPLY_TOUCH).get(REPLY_TOUCH, 0)
    return CadencePlan(touches={REPLY_TOUCH: reply_plan(con, spec, to_send)})
