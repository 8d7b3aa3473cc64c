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
    Rate("open_rate", "opened", "emails_delivered", "emails opened (an open or a click, machine opens included) / emails delivered"),
    Rate("human_open_rate", "human_opened", "emails_delivered",
         "emails opened by a person (an open or a click that is not a machine open) / emails delivered"),
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
MESSAGE_COUNTS = ("queued", "sent", "delivered", "failed", "bounced", "opened", "human_opened", "read", "complained",
                  "emails_sent", "emails_delivered", "emails_bounced", "whatsapp_delivered")
LEAD_COUNTS = ("leads_reached", "replied", "replied_to_cta", "opted_out", "clicked", "converted")

# Machine opens: mail clients and privacy proxies fetch the tracking pixel without anyone reading the email. An open
# (or a click: link scanners click too) is a machine open when it comes within MACHINE_OPEN_SECONDS of the delivery
# receipt (of the send when no receipt came), or when the event names a known image proxy: Apple Mail Privacy
# Protection (a bare `Mozilla/5.0` user agent, Apple's 17.0.0.0/8 addresses), Gmail's image proxy (`GoogleImageProxy`,
# `ggpht.com`, Google's 66.102.0.0/16 and 66.249.0.0/16), Yahoo's (`YahooMailProxy`). The user agent and address are
# read from the event's `detail` (`user_agent`/`userAgent`, `ip_address`/`ipAddress`/`ip`) where the provider sends them.
MACHINE_OPEN_SECONDS = 10
PROXY_USER_AGENT_MARKERS = ("GoogleImageProxy", "ggpht.com", "YahooMailProxy")
PROXY_BARE_USER_AGENTS = ("Mozilla/5.0",)
PROXY_IP_PREFIXES = ("17.", "66.102.", "66.249.")

# The whole campaign, a step, a channel, a step's variant: `touch` 0, `channel` and `variant` ALL mean "every".
ALL = "all"


def grain(touch: int, channel: str, variant: str) -> str:
    """Which breakdown a metrics row is: campaign, touch, channel or variant."""
    if variant != ALL:
        return "variant"
    if channel != ALL:
        return "channel"
    return "touch" if touch else "campaign"


# When a campaign's figures call for its owner: Gmail's bulk-sender line for spam complaints (0.3 %), and lines past which
# a list or a channel is hurting the sender's reputation. A rate is judged only on enough messages to mean something.
ALERT_THRESHOLDS = {"complaint_rate": 0.003, "opt_out_rate": 0.02, "bounce_rate": 0.05, "failure_rate": 0.05}
ALERT_DENOMINATORS = {"complaint_rate": "emails_delivered", "opt_out_rate": "leads_reached", "bounce_rate": "emails_sent",
                      "failure_rate": "attempted"}
MIN_DENOMINATOR = 20
DELIVERY_DROP = 0.10  # ten points below the campaign's delivery rate so far


@dataclass(frozen=True)
class Alert:
    """One figure past its line, in words an owner can act on."""

    campaign_id: str
    metric: str
    value: float
    threshold: float
    message: str


def alerts(campaign_id: str, counts: dict[str, float], previous: dict[str, float] | None = None) -> list[Alert]:
    """The alerts a campaign's whole-campaign counts raise; `previous` (the counts a day earlier) adds the delivery-drop alert.

    failure_rate = failed / (sent + failed): messages the providers refused or gave up on, of all attempted.
    """
    counts = {**counts, "attempted": counts.get("sent", 0) + counts.get("failed", 0)}
    numerators = {"complaint_rate": "complained", "opt_out_rate": "opted_out", "bounce_rate": "emails_bounced", "failure_rate": "failed"}
    found = []
    for metric, line in ALERT_THRESHOLDS.items():
        whole = counts.get(ALERT_DENOMINATORS[metric], 0) or 0
        if whole < MIN_DENOMINATOR:
            continue
        value = (counts.get(numerators[metric], 0) or 0) / whole
        if value > line:
            found.append(Alert(campaign_id, metric, value, line,
                               f"{campaign_id}: {metric.replace('_', ' ')} {value:.1%} is above {line:.1%} ({int(whole)} counted)"))
    if previous is not None:
        sent_since = counts.get("sent", 0) - previous.get("sent", 0)
        before = previous.get("delivered", 0) / previous["sent"] if previous.get("sent") else None
        if sent_since >= MIN_DENOMINATOR and before is not None:
            recent = (counts.get("delivered", 0) - previous.get("delivered", 0)) / sent_since
            if recent < before - DELIVERY_DROP:
                found.append(Alert(campaign_id, "delivery_drop", recent, before - DELIVERY_DROP,
                                   f"{campaign_id}: delivery rate of the latest day's {int(sent_since)} messages is {recent:.1%}, "
                                   f"down from {before:.1%} before"))
    return found
