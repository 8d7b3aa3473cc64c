"""Shared SQL definitions: what happened to each send, and each lead's replies, written once for every query.

The event sets come from `domain.funnel`; here they become named relations that queries put in
their `WITH` clause (`with_views("send_outcomes", ...)`), so the cadence, the limits, the retries,
tracking and the metrics all count "delivered", "opened" or "replied" the same way:

- `send_outcomes`: one row per send (every column of `sends`), plus what its events say, as booleans
  that are never NULL: `delivered` (reached the recipient), `opened` (an email open or click: the
  open rate's numerator), `human_opened` (an open or click that is not a machine open: see
  `domain.metrics.MACHINE_OPEN_SECONDS`), `engaged` (opened, clicked or read, on any channel), `read`, `clicked`,
  `bounced`, `failed` (the provider reported failed/undelivered after accepting it), `complained`,
  `opted_out` (an opt-out event), `in_flight` (handed to the provider, outcome not settled yet:
  `sending`, or `sent` with no delivered, bounced or failed event), and `failed_at`, the latest
  failed/undelivered event;
- `send_replies`: one row per send with replies: `replied` (any reply that is not only an opt-out),
  `replied_to_cta` (classified `interested`), `opted_out` (a reply asking to stop);
- `lead_replies`: one row per campaign and lead with replies that count as replies: the latest
  `reply_intent` and `replied_at`;
- `send_status`: one row per send with events: its current (final) funnel `status` by
  `domain.funnel.FUNNEL_RANK`, and `reached_at`.

They are common table expressions rather than database views, so every statement stays
self-contained and works on any connection, read-only ones included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import duckdb
import pandas as pd

from outbound_pipeline.domain.funnel import (
    BOUNCED_EVENTS,
    CLICKED_EVENTS,
    COMPLAINED_EVENTS,
    CTA_INTENT,
    DELIVERED_EVENTS,
    ENGAGED_EVENTS,
    FAILED_EVENTS,
    FUNNEL_RANK,
    OPENED_EVENTS,
    OPTED_OUT_EVENTS,
    READ_EVENTS,
    SETTLED_EVENTS,
)
from outbound_pipeline.domain.intents import OPT_OUT
from outbound_pipeline.domain.metrics import (
    MACHINE_OPEN_SECONDS,
    PROXY_BARE_USER_AGENTS,
    PROXY_IP_PREFIXES,
    PROXY_USER_AGENT_MARKERS,
)


def sql_list(values: Iterable[str]) -> str:
    """A SQL list literal, `('a', 'b')`, of fixed vocabulary (event types, intents): never user input."""
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def is_event(column: str, events: Iterable[str]) -> str:
    """`column IN (...)` for one of the event sets of `domain.funnel`."""
    return f"{column} IN {sql_list(events)}"


# A reply that counts as a reply (not only a request to stop), and one that answers the call to action.
REPLIED = f"intent <> '{OPT_OUT}'"
REPLIED_TO_CTA = f"intent = '{CTA_INTENT}'"
OPTED_OUT_BY_REPLY = f"intent = '{OPT_OUT}'"


def _alternatives(values: Iterable[str]) -> str:
    return "(" + "|".join(re.escape(v) for v in values) + ")"


# An event whose `detail` names a known image proxy (user agent or address), matched on the JSON text so that a
# detail that is not JSON never fails a query. Fixed vocabulary from `domain.metrics`, never user input.
_UA, _IP = r'"(user_agent|userAgent)"\s*:\s*"', r'"(ip_address|ipAddress|ip)"\s*:\s*"'
PROXY_PATTERN = (f"{_UA}[^\"]*{_alternatives(PROXY_USER_AGENT_MARKERS)}|{_UA}{_alternatives(PROXY_BARE_USER_AGENTS)}\""
                 f"|{_IP}{_alternatives(PROXY_IP_PREFIXES)}")
FROM_PROXY = f"regexp_matches(coalesce(detail, ''), '{PROXY_PATTERN}')"

SEND_EVENTS = f"""
    SELECT send_id,
           bool_or({is_event("event_type", DELIVERED_EVENTS)}) AS delivered,
           bool_or({is_event("event_type", OPENED_EVENTS)}) AS opened,
           bool_or({is_event("event_type", ENGAGED_EVENTS)}) AS engaged,
           bool_or({is_event("event_type", READ_EVENTS)}) AS read,
           bool_or({is_event("event_type", CLICKED_EVENTS)}) AS clicked,
           bool_or({is_event("event_type", BOUNCED_EVENTS)}) AS bounced,
           bool_or({is_event("event_type", FAILED_EVENTS)}) AS failed,
           bool_or({is_event("event_type", COMPLAINED_EVENTS)}) AS complained,
           bool_or({is_event("event_type", OPTED_OUT_EVENTS)}) AS opted_out,
           bool_or({is_event("event_type", SETTLED_EVENTS)}) AS settled,
           max(occurred_at) FILTER (WHERE {is_event("event_type", FAILED_EVENTS)}) AS failed_at,
           min(occurred_at) FILTER (WHERE event_type = 'delivered') AS delivered_at,
           max(occurred_at) FILTER (WHERE {is_event("event_type", OPENED_EVENTS)} AND NOT {FROM_PROXY}) AS unproxied_open_at
    FROM delivery_events WHERE send_id IS NOT NULL GROUP BY send_id
"""

SEND_OUTCOMES = f"""
    SELECT s.*,
           coalesce(e.delivered, false) AS delivered, coalesce(e.opened, false) AS opened,
           coalesce(e.engaged, false) AS engaged, coalesce(e.read, false) AS read,
           coalesce(e.clicked, false) AS clicked, coalesce(e.bounced, false) AS bounced,
           coalesce(e.failed, false) AS failed, coalesce(e.complained, false) AS complained,
           coalesce(e.opted_out, false) AS opted_out, e.failed_at,
           coalesce(e.unproxied_open_at >= coalesce(e.delivered_at, s.sent_at) + INTERVAL {MACHINE_OPEN_SECONDS} SECOND
                    OR (e.unproxied_open_at IS NOT NULL AND coalesce(e.delivered_at, s.sent_at) IS NULL), false) AS human_opened,
           s.status = 'sending' OR (s.status = 'sent' AND NOT coalesce(e.settled, false)) AS in_flight
    FROM sends s LEFT JOIN ({SEND_EVENTS}) e USING (send_id)
"""

SEND_REPLIES = f"""
    SELECT send_id, bool_or({REPLIED}) AS replied, bool_or({REPLIED_TO_CTA}) AS replied_to_cta,
           bool_or({OPTED_OUT_BY_REPLY}) AS opted_out
    FROM replies WHERE send_id IS NOT NULL GROUP BY send_id
"""

LEAD_REPLIES = f"""
    SELECT campaign_id, lead_id, arg_max(intent, received_at) AS reply_intent, max(received_at) AS replied_at
    FROM replies WHERE {REPLIED} AND lead_id IS NOT NULL GROUP BY campaign_id, lead_id
"""

_RANKS = "(VALUES " + ", ".join(f"('{event}', {rank})" for event, rank in FUNNEL_RANK.items()) + ") AS r(event_type, funnel_rank)"
SEND_STATUS = f"""
    SELECT e.send_id, arg_max(e.event_type, (r.funnel_rank, e.occurred_at)) AS status, max(e.occurred_at) AS reached_at
    FROM delivery_events e JOIN {_RANKS} USING (event_type) WHERE e.send_id IS NOT NULL GROUP BY e.send_id
"""

VIEWS = {"send_outcomes": SEND_OUTCOMES, "send_replies": SEND_REPLIES, "lead_replies": LEAD_REPLIES, "send_status": SEND_STATUS}


def view_definitions(*names: str) -> str:
    """`name AS (...), ...` for the named shared definitions, to follow a query's own expressions in its `WITH` clause.

    Put first expressions that shadow the tables (`sends AS (SELECT * FROM main.sends WHERE ...)`) and the
    definitions read them instead: that is how the metrics count "as of the end of a day".
    """
    return ", ".join(f"{name} AS ({VIEWS[name]})" for name in names)


def with_views(*names: str) -> str:
    """`WITH name AS (...), ...` for the named shared definitions; a query adds its own expressions after a comma."""
    return "WITH " + view_definitions(*names)


def current_statuses(con: duckdb.DuckDBPyConnection, send_ids: list[str] | None = None) -> pd.DataFrame:
    """(send_id, status, reached_at) per send with events: the furthest funnel step any of its events reached."""
    where = "WHERE send_id IN (SELECT unnest(?::VARCHAR[]))" if send_ids is not None else ""
    return con.execute(f"{with_views('send_status')} SELECT * FROM send_status {where} ORDER BY send_id",
                       [send_ids] if send_ids is not None else []).df()
