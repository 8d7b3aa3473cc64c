"""The metrics tables: per campaign and touch, per A/B variant, and the step funnel, each recomputed in one statement.

Every count comes from `send_facts` (`store.metric_facts`): one row per message of a campaign step with the moment
each of the shared definitions (`store.views`, `domain.funnel`) first held for it, folded in incrementally, so a
send counts once however many events it has and no rollup aggregates the delivery events again. Answers to replies (the reply touch, 0) are not a
campaign step: they stay out of the funnel counts and rates, and are counted apart (`answers_sent`)
with their cost in the whole-campaign row.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import get_args

import duckdb
import pandas as pd

from outbound_pipeline.domain.funnel import step_graph
from outbound_pipeline.domain.metrics import ALL, RATES
from outbound_pipeline.domain.spec import CampaignSpec, Channel
from outbound_pipeline.store.metric_facts import fold_send_facts
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import insert_new, replace_where

# The tables as they stood at `$cutoff`: every rollup counts "as of" a moment, so a past day's figures can be
# recomputed at any time and come out the same. A send not yet handed over (or settled) at the cutoff is still queued.
# The campaign steps' messages are counted from `send_facts` (`store.metric_facts`), which keeps when each fact
# became true; these cover what belongs to the campaign as a whole (research, answers to replies) and its cost.
AS_OF = """
    sends AS (SELECT * REPLACE (CASE WHEN coalesce(sent_at, updated_at) >= $cutoff THEN 'pending' ELSE status END AS status)
              FROM main.sends WHERE recorded_at < $cutoff),
    drafts AS (SELECT * FROM main.drafts WHERE created_at < $cutoff),
    research_snippets AS (SELECT * FROM main.research_snippets WHERE retrieved_at < $cutoff),
    calls AS (SELECT * FROM main.calls WHERE placed_at < $cutoff)  -- a call's cost counts once it is known (billed at its end)
"""

# Every breakdown at once: the whole campaign, each step (touch), each channel, each variant of a step.
GRAINS = "GROUPING SETS ((campaign_id), (campaign_id, touch), (campaign_id, channel), (campaign_id, touch, variant))"
# The grouping keys of a row, `all` (or touch 0) where the grain does not split by them; `no_variant` marks the
# variant grain's rows of steps without variants, which are dropped.
GRAIN_KEYS = """campaign_id, coalesce(touch, 0) AS touch, coalesce(channel, 'all') AS channel,
    CASE WHEN grouping(variant) = 0 THEN variant ELSE 'all' END AS variant, grouping(variant) = 0 AND variant IS NULL AS no_variant"""

RATE_COLUMNS = ",\n       ".join(f"c.{r.numerator} / nullif(c.{r.denominator}, 0) AS {r.name}" for r in RATES)

# What the finest grain counts (message counts; at the step grains, lead counts too), each summed for the coarser grains.
_COUNTS = {"queued": "queued", "sent": "sent", "delivered": "delivered", "failed": "failed", "bounced": "bounced", "opened": "opened",
           "human_opened": "human_opened", "read": "was_read", "complained": "complained AND channel = 'email'",
           "emails_sent": "sent AND channel = 'email'", "emails_delivered": "delivered AND channel = 'email'",
           "emails_bounced": "bounced AND channel = 'email'", "whatsapp_delivered": "delivered AND channel = 'whatsapp'",
           "leads_reached": "reached", "replied": "replied", "replied_to_cta": "to_cta", "opted_out": "opted_out", "clicked": "clicked",
           "converted": "converted"}
FINEST_COUNTS = ", ".join(f"count(*) FILTER (WHERE {condition}) AS {name}" for name, condition in _COUNTS.items())
SUMMED_COUNTS = ", ".join(f"sum({name})::BIGINT AS {name}" for name in ("messages", *_COUNTS))
NO_COUNTS = ", ".join(f"0::BIGINT AS {name}" for name in ("messages", *_COUNTS))

# The lead-level facts, each a bit of an integer per message (and per lead, OR-ed over its messages): grouping the
# messages by lead then carries one integer, not six flags. Each channel has its own six bits of the lead's integer,
# so one grouping gives the whole campaign's lead counts and every channel's.
_LEAD_FACTS = {"leads_reached": "delivered_at < $cutoff OR answered_at < $cutoff", "replied": "replied_at < $cutoff",
               "replied_to_cta": "cta_at < $cutoff", "opted_out": "opted_out_at < $cutoff OR opt_out_reply_at < $cutoff",
               "clicked": "channel = 'email' AND clicked_at < $cutoff", "converted": "cta_at < $cutoff OR converted_at < $cutoff"}
_CHANNELS = get_args(Channel)
_WIDTH = len(_LEAD_FACTS)
MESSAGE_BITS = " + ".join(f"{1 << bit} * coalesce({condition}, false)::BIGINT" for bit, condition in enumerate(_LEAD_FACTS.values()))
CHANNEL_SHIFT = f"{_WIDTH} * (list_position({list(_CHANNELS)}, channel) - 1)"
_ANY_CHANNEL = " | ".join(f"(bits >> {_WIDTH * i})" for i in range(len(_CHANNELS)))
LEAD_COUNT_COLUMNS = ", ".join(
    [f"coalesce(sum(leads) FILTER (WHERE ({_ANY_CHANNEL}) & {1 << bit} > 0), 0)::BIGINT AS all_{name}" for bit, name in enumerate(_LEAD_FACTS)]
    + [f"coalesce(sum(leads) FILTER (WHERE bits & {1 << (_WIDTH * i + bit)} > 0), 0)::BIGINT AS {channel}_{name}"
       for i, channel in enumerate(_CHANNELS) for bit, name in enumerate(_LEAD_FACTS)])
LEAD_COUNT_ROWS = "\n    UNION ALL ".join(
    f"SELECT campaign_id, '{channel}' AS channel, {', '.join(f'{channel}_{name} AS {name}' for name in _LEAD_FACTS)} FROM lead_totals"
    for channel in (ALL, *_CHANNELS))
# A message of a campaign step at $cutoff (as `m` below): drafted and recorded by then, and queued, handed over or failed.
MESSAGE_AT_CUTOFF = """drafted_at < $cutoff AND recorded_at < $cutoff
      AND (status IN ('pending', 'sending', 'sent', 'failed') OR coalesce(sent_at, updated_at) >= $cutoff)"""

# Per message of a campaign step, what happened to it by the cutoff (answers to replies, touch 0, are counted apart); then
# counted per breakdown: messages at the finest grain, summed for the coarser ones; leads once per lead. Definitions: `domain.metrics`.
ROLLUP_SQL = f"""
WITH {AS_OF}, step_facts AS NOT MATERIALIZED (  -- `send_facts` as they stood at $cutoff: a send not handed over (or settled) yet is still queued
    SELECT f.*, CASE WHEN f.send_id IS NULL OR f.recorded_at >= $cutoff THEN NULL
                     WHEN coalesce(f.sent_at, f.updated_at) >= $cutoff THEN 'pending' ELSE f.status END AS st,
           CASE WHEN f.entered_at < $cutoff THEN f.variant END AS v
    FROM send_facts f WHERE f.drafted_at < $cutoff
), facts AS NOT MATERIALIZED (  -- per draft of a step: its message (`m`: queued, handed over or failed) and what happened to it; its cost
    SELECT campaign_id, touch, coalesce(channel, draft_channel) AS channel, v AS variant, lead_id, m,
           m AND st IN ('pending', 'sending') AS queued, m AND st = 'sent' AS sent,
           m AND (st = 'failed' OR coalesce(failed_at < $cutoff, false)) AS failed,
           m AND coalesce(delivered_at < $cutoff, false) AS delivered, m AND coalesce(bounced_at < $cutoff, false) AS bounced,
           m AND coalesce(complained_at < $cutoff, false) AS complained,
           m AND channel = 'email' AND coalesce(opened_at < $cutoff, false) AS opened,
           m AND channel = 'email' AND coalesce(human_opened_at < $cutoff, false) AS human_opened,
           m AND channel = 'whatsapp' AND coalesce(read_at < $cutoff, false) AS was_read,
           m AND channel = 'email' AND coalesce(clicked_at < $cutoff, false) AS clicked,
           m AND coalesce(replied_at < $cutoff, false) AS replied, m AND coalesce(cta_at < $cutoff, false) AS to_cta,
           m AND coalesce(opted_out_at < $cutoff OR opt_out_reply_at < $cutoff, false) AS opted_out,
           m AND coalesce(cta_at < $cutoff OR converted_at < $cutoff, false) AS converted,
           -- a reply, even one asking to stop, proves the message arrived
           m AND coalesce(delivered_at < $cutoff OR answered_at < $cutoff, false) AS reached,
           CASE WHEN m AND replied_at < $cutoff THEN replied_at END AS first_reply_at,
           epoch(CASE WHEN m AND replied_at < $cutoff THEN replied_at END - sent_at) AS response_s,
           -- composing it, and sending it once handed over (or refused)
           draft_cost + CASE WHEN st IN ('sent', 'failed') THEN send_cost ELSE 0 END AS cost
    FROM (SELECT *, coalesce(st IN ('pending', 'sending', 'sent', 'failed'), false) AS m FROM step_facts)
), finest AS (  -- every count at the finest grain (step, channel, variant): the coarser grains are their sums
    SELECT campaign_id, touch, channel, variant, count(*) FILTER (WHERE m) AS messages,
           {FINEST_COUNTS}, sum(cost) AS cost
    FROM facts GROUP BY campaign_id, touch, channel, variant
), counted AS (  -- a lead has one message per step, so at the step grains messages count leads too
    SELECT {GRAIN_KEYS}, {SUMMED_COUNTS}, sum(cost) AS cost
    FROM finest GROUP BY {GRAINS} HAVING sum(messages) > 0
), response AS (  -- medians need the values themselves: those of the messages answered (a few)
    SELECT campaign_id, touch, CASE WHEN grouping(variant) = 1 THEN 'all' ELSE variant END AS variant,
           median(response_s) AS response_median_s, quantile_cont(response_s, 0.9) AS response_p90_s
    FROM facts WHERE response_s IS NOT NULL GROUP BY GROUPING SETS ((campaign_id, touch), (campaign_id, touch, variant))
), lead_bits AS (  -- the whole campaign and each channel span several steps: there a lead counts once. Leads are told apart
    -- by a 64-bit hash of campaign and lead (grouping on it is several times faster than on the text; two leads of a
    -- campaign sharing one is about a chance in twenty million at a million leads).
    SELECT any_value(campaign_id) AS campaign_id, bit_or(bits << shift) AS bits
    FROM (SELECT campaign_id, hash(campaign_id, lead_id) AS lead_key, {CHANNEL_SHIFT} AS shift, {MESSAGE_BITS} AS bits
          FROM send_facts WHERE {MESSAGE_AT_CUTOFF})
    GROUP BY lead_key
), lead_totals AS (
    SELECT campaign_id, {LEAD_COUNT_COLUMNS}  -- leads with the same facts counted together first: a few hundred groups
    FROM (SELECT campaign_id, bits, count(*) AS leads FROM lead_bits GROUP BY campaign_id, bits) GROUP BY campaign_id
), lead_rows AS (
    {LEAD_COUNT_ROWS}
), channel_response AS (  -- the wait for a lead's first reply on each channel (of messages answered at once, the latest sent):
                          -- the few leads who replied
    SELECT campaign_id, hash(campaign_id, lead_id) AS lead_key, channel,
           min([epoch(replied_at), epoch(replied_at - sent_at)]) AS first_reply
    FROM send_facts WHERE replied_at < $cutoff AND {MESSAGE_AT_CUTOFF}
    GROUP BY ALL
), lead_response AS (  -- and across channels, the first of those
    SELECT campaign_id, channel, median(first_reply[2]) AS response_median_s, quantile_cont(first_reply[2], 0.9) AS response_p90_s
    FROM (SELECT campaign_id, channel, first_reply FROM channel_response
          UNION ALL
          SELECT campaign_id, 'all', min(first_reply) FROM channel_response GROUP BY campaign_id, lead_key)
    GROUP BY campaign_id, channel
), lead_counts AS (
    SELECT l.*, 0 AS touch, 'all' AS variant, r.response_median_s, r.response_p90_s
    FROM lead_rows l LEFT JOIN lead_response r USING (campaign_id, channel)
), campaign_cost AS (  -- research and answers to replies belong to the campaign as a whole, to no step or channel
    SELECT campaign_id, sum(cost) AS cost, sum(answer) AS answers_sent FROM (
        SELECT campaign_id, cost_usd::DECIMAL(18, 6) AS cost, 0 AS answer FROM research_snippets
        UNION ALL SELECT campaign_id, cost_usd::DECIMAL(18, 6), 0 FROM drafts WHERE touch = 0
        UNION ALL SELECT campaign_id, cost_usd::DECIMAL(18, 6), (status = 'sent')::INTEGER FROM sends WHERE touch = 0 AND status IN ('sent', 'failed')
        UNION ALL SELECT campaign_id, coalesce(cost_usd::DECIMAL(18, 6), 0), 0 FROM calls  -- voice: the call minutes billed
    ) GROUP BY campaign_id
), whole AS (  -- a voice campaign has no messages: its whole-campaign row carries its calls' cost, every count 0
    SELECT * FROM counted
    UNION ALL BY NAME
    SELECT campaign_id, 0 AS touch, 'all' AS channel, 'all' AS variant, false AS no_variant, {NO_COUNTS}, 0::DECIMAL(18, 6) AS cost
    FROM (SELECT DISTINCT campaign_id FROM calls) WHERE campaign_id NOT IN (SELECT campaign_id FROM counted)
), rows AS (
    SELECT c.* REPLACE (coalesce(l.leads_reached, c.leads_reached) AS leads_reached, coalesce(l.replied, c.replied) AS replied,
                        coalesce(l.replied_to_cta, c.replied_to_cta) AS replied_to_cta, coalesce(l.opted_out, c.opted_out) AS opted_out,
                        coalesce(l.clicked, c.clicked) AS clicked, coalesce(l.converted, c.converted) AS converted),
           CASE WHEN l.campaign_id IS NULL THEN r.response_median_s ELSE l.response_median_s END AS response_median_s,
           CASE WHEN l.campaign_id IS NULL THEN r.response_p90_s ELSE l.response_p90_s END AS response_p90_s,
           (coalesce(c.cost, 0) + CASE WHEN c.touch = 0 AND c.channel = 'all' THEN coalesce(a.cost, 0) ELSE 0 END)::DECIMAL(18, 6) AS cost_usd,
           CASE WHEN c.touch = 0 AND c.channel = 'all' THEN coalesce(a.answers_sent, 0) END AS answers_sent
    FROM whole c
    LEFT JOIN lead_counts l USING (campaign_id, touch, channel, variant)
    LEFT JOIN response r ON r.campaign_id = c.campaign_id AND r.touch = c.touch AND r.variant = c.variant AND c.touch > 0 AND c.channel = 'all'
    LEFT JOIN campaign_cost a ON a.campaign_id = c.campaign_id
    WHERE NOT c.no_variant
)
SELECT c.campaign_id, c.touch, c.channel, c.variant,
       c.queued, c.sent, c.delivered, c.failed, c.bounced, c.opened, c.human_opened, c.read, c.complained,
       c.emails_sent, c.emails_delivered, c.emails_bounced, c.whatsapp_delivered,
       c.leads_reached, c.replied, c.replied_to_cta, c.opted_out, c.clicked, c.converted,
       {RATE_COLUMNS},
       c.response_median_s, c.response_p90_s, c.cost_usd,
       (c.cost_usd / nullif(c.replied, 0))::DECIMAL(18, 6) AS cost_per_reply_usd,
       (c.cost_usd / nullif(c.converted, 0))::DECIMAL(18, 6) AS cost_per_conversion_usd,
       c.answers_sent, $computed_at::TIMESTAMP AS computed_at
FROM rows c ORDER BY c.campaign_id, c.touch, c.channel, c.variant
"""

# Per A/B variant of a step: its `opened` counts engagement on any channel (opened, clicked or read). One draft per lead
# and step, so rows are leads.
VARIANT_SQL = """
WITH per_send AS (
    SELECT campaign_id, touch, step, variant, lead_id, coalesce(status = 'sent', false) AS sent,
           delivered_at IS NOT NULL AS delivered, opened_at IS NOT NULL OR read_at IS NOT NULL AS opened,
           replied_at IS NOT NULL AS replied, cta_at IS NOT NULL AS to_cta
    FROM send_facts WHERE variant IS NOT NULL
)
SELECT campaign_id, touch, any_value(step) AS step, variant, count(*) AS leads,
       count(*) FILTER (WHERE sent) AS sent, count(*) FILTER (WHERE delivered) AS delivered,
       count(*) FILTER (WHERE opened) AS opened, count(*) FILTER (WHERE replied) AS replied,
       count(*) FILTER (WHERE to_cta) AS replied_to_cta,
       -- as the campaign's rates: leads who replied / leads reached, replies that accepted the call to action / replies
       count(*) FILTER (WHERE replied) / nullif(count(*) FILTER (WHERE delivered OR replied), 0) AS reply_rate,
       count(*) FILTER (WHERE to_cta) / nullif(count(*) FILTER (WHERE replied), 0) AS reply_to_cta_rate,
       ?::TIMESTAMP AS computed_at
FROM per_send GROUP BY campaign_id, touch, variant ORDER BY ALL
"""

# Per step: recipients who entered it (a draft was written for them), were sent, delivered, engaged (opened, clicked
# or read) and replied; drop-off from the previous steps (`_funnel_steps`, `_funnel_edges` come from the spec).
# A recipient of a previous step whose turn for this step has not come (still in the sequence, the step's delay not
# yet passed since the previous message) is `waiting`: neither dropped nor in the drop-off's denominator.
FUNNEL_SQL = """
WITH per_lead AS (  -- one draft per lead and step (answers to replies, touch 0, are no step): the step's recipients, told apart
                    -- by a 64-bit hash of campaign and lead, as in the rollup
    SELECT campaign_id, touch, hash(campaign_id, lead_id) AS lead_key, coalesce(status = 'sent', false) AS sent,
           delivered_at IS NOT NULL AS delivered,
           opened_at IS NOT NULL OR read_at IS NOT NULL AS engaged, replied_at IS NOT NULL AS replied,
           CASE WHEN status = 'sent' THEN sent_at END AS sent_at
    FROM send_facts
), counts AS (
    SELECT campaign_id, touch, count(*) AS entered, count(*) FILTER (WHERE sent) AS sent,
           count(*) FILTER (WHERE delivered) AS delivered, count(*) FILTER (WHERE engaged) AS engaged,
           count(*) FILTER (WHERE replied) AS replied
    FROM per_lead GROUP BY campaign_id, touch
), edges AS (
    SELECT *, count(*) OVER (PARTITION BY campaign_id, touch) AS sources FROM _funnel_edges
), previous AS (  -- each recipient of any previous step, once per step it could lead to, with when that step reached them
                  -- (a step with one previous step needs no grouping: a lead has one draft per step)
    SELECT e.campaign_id, e.touch, p.lead_key, p.sent_at AS previous_sent_at
    FROM edges e JOIN per_lead p ON p.campaign_id = e.campaign_id AND p.touch = e.previous_touch
    WHERE e.sources = 1
    UNION ALL
    SELECT e.campaign_id, e.touch, p.lead_key, max(p.sent_at) AS previous_sent_at
    FROM edges e JOIN per_lead p ON p.campaign_id = e.campaign_id AND p.touch = e.previous_touch
    WHERE e.sources > 1
    GROUP BY ALL
), due AS (  -- whether each recipient of a previous step entered this one, and whether this step's delay has passed for them
    SELECT p.campaign_id, p.touch, p.lead_key, cur.lead_key IS NOT NULL AS entered,
           p.previous_sent_at IS NULL OR p.previous_sent_at + to_seconds(st.delay_s) > $now AS not_yet_due
    FROM previous p
    JOIN _funnel_steps st ON st.campaign_id = p.campaign_id AND st.touch = p.touch
    LEFT JOIN per_lead cur ON cur.lead_key = p.lead_key AND cur.touch = p.touch
), outcome AS (  -- not in this step yet: still waiting (in the sequence, and the step's delay has not passed), or dropped
    SELECT campaign_id, touch, entered, false AS waiting FROM due WHERE entered OR NOT not_yet_due
    UNION ALL  -- only those whose turn has not come need their status: still in the sequence (active), they wait
    SELECT p.campaign_id, p.touch, false AS entered, coalesce(rc.status, '') = 'active' AS waiting
    FROM due p LEFT JOIN (SELECT hash(campaign_id, lead_id) AS lead_key, status FROM recipients) rc ON rc.lead_key = p.lead_key
    WHERE NOT p.entered AND p.not_yet_due
), dropoff AS (
    SELECT campaign_id, touch, count(*) FILTER (WHERE NOT waiting) AS previous_entered,
           count(*) FILTER (WHERE NOT entered AND NOT waiting) AS dropped, count(*) FILTER (WHERE waiting) AS waiting
    FROM outcome GROUP BY campaign_id, touch
)
SELECT st.campaign_id, st.touch, st.step, st.previous_steps,
       coalesce(c.entered, 0) AS entered, coalesce(c.sent, 0) AS sent, coalesce(c.delivered, 0) AS delivered,
       coalesce(c.engaged, 0) AS engaged, coalesce(c.replied, 0) AS replied,
       CASE WHEN st.previous_steps IS NOT NULL THEN coalesce(d.previous_entered, 0) END AS previous_entered,
       CASE WHEN st.previous_steps IS NOT NULL THEN coalesce(d.dropped, 0) END AS dropped,
       d.dropped / nullif(d.previous_entered, 0) AS dropoff_rate,
       $now::TIMESTAMP AS computed_at,
       CASE WHEN st.previous_steps IS NOT NULL THEN coalesce(d.waiting, 0) END AS waiting
FROM _funnel_steps st
LEFT JOIN counts c ON c.campaign_id = st.campaign_id AND c.touch = st.touch
LEFT JOIN dropoff d ON d.campaign_id = st.campaign_id AND d.touch = st.touch
ORDER BY st.campaign_id, st.touch
"""


def _rewrite(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Validate, then replace the whole table with `frame` (a rollup is recomputed from scratch each time)."""
    frame = validate(table, frame) if not frame.empty else frame
    replace_where(con, table, frame, "true", [])
    return frame


def rollup(con: duckdb.DuckDBPyConnection, cutoff: datetime, computed_at: datetime | None = None) -> pd.DataFrame:
    """Every breakdown (campaign, touch, channel, variant) of every campaign, counted as of `cutoff` (the facts are folded first)."""
    fold_send_facts(con)
    return con.execute(ROLLUP_SQL, {"cutoff": cutoff, "computed_at": computed_at or cutoff}).df()


def refresh_campaign_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `campaign_metrics` (per campaign and touch, touch 0 = whole campaign) as of `now`; returns the rows written."""
    frame = rollup(con, now)
    frame = frame[(frame["channel"] == ALL) & (frame["variant"] == ALL)].drop(columns=["channel", "variant"]).reset_index(drop=True)
    return _rewrite(con, "campaign_metrics", frame)


def day_cutoff(day: date, now: datetime) -> datetime:
    """What a day's rollup counts up to: the end of the day, or `now` while the day is not over."""
    return min(datetime.combine(day + timedelta(days=1), time()), now)


def refresh_daily_metrics(con: duckdb.DuckDBPyConnection, day: date, now: datetime) -> pd.DataFrame:
    """Replace `metrics_daily` rows of `day` with every breakdown as of the day's end (or `now`); returns them.

    A day that is over always gives the same rows, however often it is recomputed (`computed_at` is the
    cutoff, not the wall clock); today's rows grow until the day ends.
    """
    cutoff = day_cutoff(day, now)
    frame = rollup(con, cutoff)
    frame.insert(0, "day", pd.Timestamp(day))
    if not frame.empty:
        frame = validate("metrics_daily", frame)
    replace_where(con, "metrics_daily", frame, "day = ?", [day])
    return frame


def daily_metrics(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int = 0, channel: str = ALL, variant: str = ALL) -> pd.DataFrame:
    """One breakdown's history from `metrics_daily`, a row per day: what a rates-over-time chart draws."""
    return con.execute("SELECT * FROM metrics_daily WHERE campaign_id = ? AND touch = ? AND channel = ? AND variant = ? ORDER BY day",
                       [campaign_id, touch, channel, variant]).df()


def record_conversion(con: duckdb.DuckDBPyConnection, conversion_id: str, campaign_id: str, lead_id: str, kind: str,
                      occurred_at: datetime, source: str, recorded_at: datetime, value_usd: Decimal | None = None) -> bool:
    """Record a conversion reported by the user's system (a booked meeting, a purchase); False when the id was already recorded."""
    row = pd.DataFrame([{"conversion_id": conversion_id, "campaign_id": campaign_id, "lead_id": lead_id, "kind": kind,
                         "value_usd": value_usd, "occurred_at": occurred_at, "source": source, "recorded_at": recorded_at}])
    return insert_new(con, "conversions", row) == 1  # validated like every other write


def variant_frame(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Every step variant's counts and reply rates, computed in one statement (the facts are folded first)."""
    fold_send_facts(con)
    return con.execute(VARIANT_SQL, [now]).df()


def refresh_variant_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `variant_metrics`; returns the rows written."""
    return _rewrite(con, "variant_metrics", variant_frame(con, now))


def launched_specs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, CampaignSpec]]:
    """Every launched campaign with its frozen spec, by id."""
    rows = con.execute("SELECT campaign_id, spec FROM campaigns ORDER BY campaign_id").fetchall()
    return [(campaign_id, CampaignSpec.model_validate_json(spec)) for campaign_id, spec in rows]


def funnel_frame(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """The funnel of every launched campaign, one row per step, computed in one statement."""
    steps: list[dict] = []
    edges: list[dict] = []
    for campaign_id, spec in launched_specs(con):
        s, e = step_graph(campaign_id, spec)
        steps += [{**step, "delay_s": spec.steps[step["touch"] - 1].delay_timedelta().total_seconds()} for step in s]
        edges += e
    step_frame = pd.DataFrame(steps, columns=["campaign_id", "touch", "step", "previous_steps", "delay_s"]).astype(
        {"campaign_id": "string", "touch": "int32", "step": "string", "previous_steps": "string", "delay_s": "float64"})
    edge_frame = pd.DataFrame(edges, columns=["campaign_id", "touch", "previous_touch"]).astype(
        {"campaign_id": "string", "touch": "int32", "previous_touch": "int32"})
    fold_send_facts(con)
    con.register("_funnel_steps", step_frame)
    con.register("_funnel_edges", edge_frame)
    try:
        return con.execute(FUNNEL_SQL, {"now": now}).df()
    finally:
        con.unregister("_funnel_steps")
        con.unregister("_funnel_edges")


def refresh_funnel_metrics(con: duckdb.DuckDBPyConnection, now: datetime) -> pd.DataFrame:
    """Recompute `funnel_metrics`; returns the rows written."""
    return _rewrite(con, "funnel_metrics", funnel_frame(con, now))


def read_campaign_metrics(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """The `campaign_metrics` rows of one campaign (or all), by campaign and touch (touch 0 = whole campaign)."""
    if campaign_id is None:
        return con.execute("SELECT * FROM campaign_metrics ORDER BY campaign_id, touch").df()
    return con.execute("SELECT * FROM campaign_metrics WHERE campaign_id = ? ORDER BY touch", [campaign_id]).df()


# What a campaign cost, item by item, as of `$cutoff`: research, composing (per-lead drafts and answers), sending.
COST_SQL = f"""
WITH {AS_OF}
SELECT (SELECT coalesce(sum(cost_usd::DECIMAL(18, 6)), 0) FROM research_snippets WHERE campaign_id = $campaign)::DECIMAL(18, 6) AS research,
       (SELECT coalesce(sum(cost_usd::DECIMAL(18, 6)), 0) FROM drafts WHERE campaign_id = $campaign)::DECIMAL(18, 6) AS composing,
       (SELECT coalesce(sum(cost_usd::DECIMAL(18, 6)), 0) FROM sends
        WHERE campaign_id = $campaign AND status IN ('sent', 'failed'))::DECIMAL(18, 6) AS sending,
       (SELECT coalesce(sum(cost_usd::DECIMAL(18, 6)), 0) FROM calls WHERE campaign_id = $campaign)::DECIMAL(18, 6) AS calls
"""


def cost_breakdown(con: duckdb.DuckDBPyConnection, campaign_id: str, cutoff: datetime) -> dict[str, Decimal]:
    """research, composing, sending, calls (voice campaigns) and total, in exact dollars."""
    research, composing, sending, calls = con.execute(COST_SQL, {"cutoff": cutoff, "campaign": campaign_id}).fetchall()[0]
    items = {"research": research, "composing": composing, "sending": sending}
    if calls:
        items["calls"] = calls
    return {**items, "total": sum(items.values(), Decimal(0))}


def first_activity(con: duckdb.DuckDBPyConnection, campaign_id: str) -> datetime | None:
    """When the campaign's first message was recorded: where its history starts."""
    value = con.execute("SELECT min(recorded_at) FROM sends WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    return value if isinstance(value, datetime) else None


def last_activity(con: duckdb.DuckDBPyConnection, campaign_id: str) -> datetime | None:
    """The campaign's latest message, event or reply: where its history ends."""
    value = con.execute("""
        SELECT greatest((SELECT max(coalesce(sent_at, recorded_at)) FROM sends WHERE campaign_id = $c),
                        (SELECT max(occurred_at) FROM delivery_events WHERE campaign_id = $c),
                        (SELECT max(received_at) FROM replies WHERE campaign_id = $c))
    """, {"c": campaign_id}).fetchall()[0][0]
    return value if isinstance(value, datetime) else None


def known_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str) -> bool:
    """True when the campaign was launched or has messages."""
    return bool(con.execute("SELECT EXISTS (SELECT 1 FROM campaigns WHERE campaign_id = $c) OR EXISTS (SELECT 1 FROM sends WHERE campaign_id = $c)",
                            {"c": campaign_id}).fetchall()[0][0])


def daily_history(con: duckdb.DuckDBPyConnection, campaign_id: str, now: datetime, touch: int = 0, channel: str = ALL,
                  variant: str = ALL) -> pd.DataFrame:
    """A breakdown's row per day since its first message: the `metrics_daily` rows kept, and any day missing from them
    counted now as of its end (so a report shows the whole history even where the daily rollup never ran)."""
    kept = daily_metrics(con, campaign_id, touch, channel, variant)
    start = first_activity(con, campaign_id)
    if start is None:
        return kept
    have = {pd.Timestamp(d).date() for d in kept["day"]}
    rows = [kept] if not kept.empty else []
    day, end = start.date(), min(now, last_activity(con, campaign_id) or now).date()
    while day <= end:
        if day not in have:
            frame = rollup(con, day_cutoff(day, now))
            frame = frame[(frame["campaign_id"] == campaign_id) & (frame["touch"] == touch) & (frame["channel"] == channel)
                          & (frame["variant"] == variant)]
            rows.append(frame.assign(day=pd.Timestamp(day)))
        day += timedelta(days=1)
    rows = [r for r in rows if not r.empty]
    if not rows:
        return kept
    return pd.concat(rows, ignore_index=True).sort_values("day").reset_index(drop=True)


def alert_counts(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Per campaign, the whole-campaign counts now (`campaign_metrics`) and as of the day before its latest `metrics_daily` day."""
    numeric = ["sent", "delivered", "failed", "complained", "opted_out", "leads_reached", "emails_sent", "emails_bounced", "emails_delivered"]
    current = con.execute(f"SELECT campaign_id, {', '.join(numeric)} FROM campaign_metrics WHERE touch = 0").df()
    previous = con.execute(f"""
        SELECT campaign_id, {', '.join(numeric)} FROM metrics_daily d
        WHERE touch = 0 AND channel = 'all' AND variant = 'all'
          AND day = (SELECT max(day) - 1 FROM metrics_daily m WHERE m.campaign_id = d.campaign_id)
    """).df()

    def as_dicts(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
        return {str(r["campaign_id"]): {c: float(r[c]) if not pd.isna(r[c]) else 0.0 for c in numeric} for _, r in frame.iterrows()}

    return as_dicts(current), as_dicts(previous)


# One lead's path through a campaign, in time order: the research that grounded it, each draft, its review, each send,
# what the providers reported, and the replies. One query, one row per thing that happened.
LEAD_STORY_SQL = """
SELECT * FROM (
    SELECT retrieved_at AS happened_at, 'research' AS stage, NULL::INTEGER AS touch, title || ' (' || source_url || ')' AS detail
    FROM research_snippets WHERE campaign_id = $campaign AND lead_id = $lead
    UNION ALL
    SELECT created_at, 'draft', touch, channel || ': ' || coalesce(subject || ' / ', '') || left(body, 120)
    FROM drafts WHERE campaign_id = $campaign AND lead_id = $lead
    UNION ALL
    SELECT a.decided_at, 'review', a.touch, a.decision || ' by ' || a.reviewer || ' (' || a.mode || ')' || coalesce(': ' || a.note, '')
    FROM approvals a JOIN drafts d USING (draft_id) WHERE d.campaign_id = $campaign AND d.lead_id = $lead
    UNION ALL
    SELECT coalesce(sent_at, recorded_at), 'send', touch,
           channel || ' to ' || to_address || ': ' || status || coalesce(' (' || error_code || ' ' || coalesce(error_message, '') || ')', '')
    FROM sends WHERE campaign_id = $campaign AND lead_id = $lead
    UNION ALL
    SELECT occurred_at, 'event', touch, channel || ' ' || event_type
    FROM delivery_events WHERE campaign_id = $campaign AND lead_id = $lead
    UNION ALL
    SELECT received_at, 'reply', touch, intent || ': ' || left(body, 120)
    FROM replies WHERE campaign_id = $campaign AND lead_id = $lead
) ORDER BY happened_at, CASE stage WHEN 'research' THEN 0 WHEN 'draft' THEN 1 WHEN 'review' THEN 2 WHEN 'send' THEN 3
                          WHEN 'event' THEN 4 ELSE 5 END, detail
"""


def lead_story(con: duckdb.DuckDBPyConnection, campaign_id: str, lead_id: str) -> pd.DataFrame:
    """(happened_at, stage, touch, detail) for everything that happened to one lead in one campaign, oldest first."""
    return con.execute(LEAD_STORY_SQL, {"campaign": campaign_id, "lead": lead_id}).df()


def history_for_forecast(con: duckdb.DuckDBPyConnection, exclude: str | None = None) -> tuple[float | None, dict[str, float]]:
    """From earlier campaigns: the share of reached leads who go on (1 - reply, opt-out and bounce rates, pooled), and the
    average cost per sent message per channel, per researched lead (`research`) and per draft (`draft`)."""
    pooled = con.execute("""
        SELECT sum(leads_reached), sum(replied), sum(opted_out), sum(emails_bounced), sum(emails_sent)
        FROM campaign_metrics WHERE touch = 0 AND campaign_id IS DISTINCT FROM ?
    """, [exclude]).fetchall()[0]
    reached, replied, opted, bounced, emails = (float(v) if v is not None else 0.0 for v in pooled)
    continuation = None
    if reached > 0:
        continuation = max(0.0, 1 - replied / reached - opted / reached - (bounced / emails if emails else 0.0))
    costs = {str(ch): float(c) for ch, c in con.execute("""
        SELECT channel, avg(cost_usd) FROM sends WHERE status = 'sent' AND touch > 0 AND campaign_id IS DISTINCT FROM ? GROUP BY channel
    """, [exclude]).fetchall()}
    research = con.execute("""SELECT sum(cost_usd) / nullif(count(DISTINCT (campaign_id, lead_id)), 0) FROM research_snippets
                              WHERE campaign_id IS DISTINCT FROM ?""", [exclude]).fetchall()[0][0]
    draft = con.execute("SELECT avg(cost_usd) FROM drafts WHERE touch > 0 AND campaign_id IS DISTINCT FROM ?", [exclude]).fetchall()[0][0]
    costs.update({k: float(v) for k, v in (("research", research), ("draft", draft)) if v is not None})
    return continuation, costs


def campaign_owners(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """Each launched campaign's owner (the spec's `owner_email`), who is told of its alerts."""
    rows = con.execute("SELECT campaign_id, json_extract_string(spec, '$.owner_email') FROM campaigns ORDER BY campaign_id").fetchall()
    return {str(campaign_id): owner for campaign_id, owner in rows}


def record_alerts(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> int:
    """Keep the alerts not raised yet (one per campaign, metric and day); returns how many are new."""
    return insert_new(con, "alerts", frame)


def alerts_to_email(con: duckdb.DuckDBPyConnection, since: datetime) -> pd.DataFrame:
    """Alerts raised since `since` whose owner has an address and has not been emailed yet, oldest first."""
    return con.execute("""SELECT * FROM alerts WHERE emailed_at IS NULL AND owner_email IS NOT NULL AND raised_at >= ?
                          ORDER BY raised_at, alert_id""", [since]).df()


def mark_alerts_emailed(con: duckdb.DuckDBPyConnection, alert_ids: list[str], at: datetime) -> None:
    con.execute("UPDATE alerts SET emailed_at = ? WHERE alert_id IN (SELECT unnest(?::VARCHAR[]))", [at, alert_ids])


def read_alerts(con: duckdb.DuckDBPyConnection, campaign_id: str | None = None) -> pd.DataFrame:
    """The alerts raised, newest first (one campaign's, or every campaign's)."""
    return con.execute("SELECT * FROM alerts WHERE $c IS NULL OR campaign_id = $c ORDER BY raised_at DESC, metric", {"c": campaign_id}).df()
