"""What a send's delivery events mean (delivered, opened, engaged, failed... and its current status), and a campaign's step funnel.

Every query that counts or routes by what happened to a message uses these sets (rendered into SQL
once, in `store.views`), so "delivered" or "opened" means the same in the cadence, the limits, the
retries and the metrics.

Providers deliver callbacks out of order (a `delivered` can arrive before its `sent`),
so every event is kept as it came and the current status is derived by rank, never by
arrival time: nothing can move a message backwards through the funnel.
"""

from __future__ import annotations

from outbound_pipeline.domain.spec import CampaignSpec

# The message reached the recipient: a delivery receipt, or anything only a delivered message can produce.
DELIVERED_EVENTS = ("delivered", "opened", "read", "clicked")
# An email was opened: opens and clicks (a WhatsApp `read` is counted apart, as `read`). The open rate's numerator.
OPENED_EVENTS = ("opened", "clicked")
# The recipient engaged with the message on any channel: opened, clicked or read. What routing's "opened" condition,
# the funnel's `engaged` and the A/B results' `opened` count.
ENGAGED_EVENTS = ("opened", "read", "clicked")
READ_EVENTS = ("read",)
CLICKED_EVENTS = ("clicked",)
BOUNCED_EVENTS = ("bounced",)
# The provider gave up on the message after accepting it.
FAILED_EVENTS = ("failed", "undelivered")
COMPLAINED_EVENTS = ("complained",)
OPTED_OUT_EVENTS = ("opted_out",)
# The message's delivery is settled one way or the other: a send without any of these is still in flight.
SETTLED_EVENTS = (*DELIVERED_EVENTS, *BOUNCED_EVENTS, *FAILED_EVENTS)

# Higher is further. Failures outrank sent/delivered because they are final for that message.
FUNNEL_RANK = {
    "sent": 1, "delivery_delayed": 2, "delivered": 3, "opened": 4, "read": 4, "clicked": 5,
    "undelivered": 6, "failed": 6, "bounced": 7, "complained": 8, "opted_out": 9,
}

# A reply counts as a reply unless it only asked to stop (`intents.OPT_OUT`); an `interested` one answers the call to action.
CTA_INTENT = "interested"


def step_graph(campaign_id: str, spec: CampaignSpec) -> tuple[list[dict], list[dict]]:
    """(one row per step with the names of its previous steps, one row per (step, previous step) edge).

    A step's previous steps are every step that can lead to it: the following-step rule and branches.
    """
    names = spec.step_names
    previous: dict[int, list[int]] = {t: [] for t in range(1, spec.n_touches + 1)}
    for touch in range(1, spec.n_touches + 1):
        for _, nxt in spec.successors(touch):
            if touch not in previous[nxt]:
                previous[nxt].append(touch)
    steps = [{"campaign_id": campaign_id, "touch": t, "step": names[t - 1],
              "previous_steps": ", ".join(names[p - 1] for p in sorted(ps)) or None} for t, ps in previous.items()]
    edges = [{"campaign_id": campaign_id, "touch": t, "previous_touch": p} for t, ps in previous.items() for p in ps]
    return steps, edges
