"""The campaign metrics as the product defines them: every rate a named numerator over a named denominator.

Counts are of two kinds, and a rate says which it divides. Message counts (`sent`, `delivered`,
`opened`, `emails_sent`...) count sends; lead counts (`leads_reached`, `replied`, `replied_to_cta`,
`opted_out`, `clicked`, `converted`) count distinct leads, so a lead who answers two touches is one
reply. A lead is reached when one of their messages was delivered, or drew a reply or an opt-out
(either proves it arrived). A zero denominator gives no rate (NULL), never 0 and never an error.

The SQL that computes the counts is in `store.metrics`; the rates are built from this table, so
the README, the report and the rollups cannot disagree on a definition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """One rate: `numerator / denominator`, both count columns of a metrics row."""

    name: str
    numerator: str
    denominator: str
    meaning: str


RATES: tuple[Rate, ...] = (
    Rate("delivery_rate", "delivered", "sent", "messages delivered / messages sent (handed to the provider)"),
    Rate("open_rate", "opened", "emails_delivered", "emails opened (an open or a click) / emails delivered"),
    Rate("read_rate", "read", "whatsapp_delivered", "WhatsApp messages read / WhatsApp messages delivered"),
    Rate("click_rate", "clicked", "emails_delivered", "leads who clicked a link in an email / emails delivered"),
    Rate("reply_rate", "replied", "leads_reached", "leads who replied / leads reached"),
    Rate("reply_to_cta_rate", "replied_to_cta", "replied", "leads whose reply accepted the call to action / leads who replied"),
    Rate("opt_out_rate", "opted_out", "leads_reached", "leads who opted out / leads reached"),
    Rate("bounce_rate", "emails_bounced", "emails_sent", "emails bounced / emails sent"),
    Rate("complaint_rate", "complained", "emails_delivered", "emails marked as spam / emails delivered"),
    Rate("conversion_rate", "converted", "leads_reached",
         "leads with a conversion (an accepted call to action, or a conversion recorded by your system) / leads reached"),
)
RATE_NAMES = tuple(rate.name for rate in RATES)

# Message counts, then lead counts, in the order tables show them.
MESSAGE_COUNTS = ("queued", "sent", "delivered", "failed", "bounced", "opened", "read", "complained",
                  "emails_sent", "emails_delivered", "emails_bounced", "whatsapp_delivered")
LEAD_COUNTS = ("leads_reached", "replied", "replied_to_cta", "opted_out", "clicked", "converted")

# The whole campaign, a step, a channel, a step's variant: `touch` 0, `channel` and `variant` ALL mean "every".
ALL = "all"


def grain(touch: int, channel: str, variant: str) -> str:
    """Which breakdown a metrics row is: campaign, touch, channel or variant."""
    if variant != ALL:
        return "variant"
    if channel != ALL:
        return "channel"
    return "touch" if touch else "campaign"
