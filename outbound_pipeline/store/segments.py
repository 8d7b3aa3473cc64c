"""A campaign segment as a DuckDB condition over `leads l`, and the leads of some lists it selects.

Every value of a segment reaches DuckDB as a bound parameter, never spliced into the SQL text, so a
value such as `O'Brien` or `x' OR 1=1 --` is matched as written. Comparisons follow the rules of
`domain/segments.py` (numbers, then ISO dates, then case-insensitive text); engagement conditions
read `sends`, `replies` and `delivery_events` relative to the pipeline clock's `now`.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import duckdb
import pandas as pd

from outbound_pipeline.domain.segments import (
    CUSTOM_PREFIX,
    DATE_PATTERN,
    FULL_NAME,
    LEAD_COLUMNS,
    NUMBER_PATTERN,
    ORDERED_OPS,
    Segment,
    SegmentCondition,
    as_datetime,
    as_number,
    as_text,
)

# Events that show the lead saw a message: an email opened or clicked, a WhatsApp message read.
ENGAGED_EVENTS = ("opened", "clicked", "read")
_COMPARATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


class Fragment(NamedTuple):
    """SQL text and the parameters of its `?` placeholders, in order."""

    sql: str
    params: tuple[object, ...] = ()


class _Param(NamedTuple):
    value: object


def _sql(*parts: str | Fragment | _Param) -> Fragment:
    """Concatenate SQL text, fragments and parameters, keeping parameters in placeholder order."""
    text: list[str] = []
    params: list[object] = []
    for part in parts:
        if isinstance(part, str):
            text.append(part)
        elif isinstance(part, _Param):
            text.append("?")
            params.append(part.value)
        else:
            text.append(part.sql)
            params.extend(part.params)
    return Fragment("".join(text), tuple(params))


def _field(field: str) -> Fragment:
    """The lead's value of a (normalised) field as text: its column, its full name, or its custom attribute."""
    if field == FULL_NAME:
        return Fragment("concat_ws(' ', l.first_name, l.last_name)")
    if field in LEAD_COLUMNS:
        return Fragment(f"l.{field}")  # an identifier from the fixed LEAD_COLUMNS list, never user text
    name = field.removeprefix(CUSTOM_PREFIX)  # normalised to [a-z0-9_], so it sits safely inside the quoted JSON path
    return _sql("json_extract_string(l.custom_vars, ", _Param(f'$."{name}"'), ")")


def _as_number(value: Fragment) -> Fragment:
    trimmed = _sql("trim(", value, ")")
    return _sql("(CASE WHEN regexp_full_match(", trimmed, f", '{NUMBER_PATTERN}') THEN TRY_CAST(", trimmed, " AS DOUBLE) END)")


def _as_timestamp(value: Fragment) -> Fragment:
    trimmed = _sql("trim(", value, ")")
    return _sql("(CASE WHEN regexp_full_match(", trimmed, f", '{DATE_PATTERN}') THEN TRY_CAST(", trimmed, " AS TIMESTAMP) END)")


def _equals(value: Fragment, wanted: object) -> Fragment:
    """value = wanted: as numbers or dates when both are, else as text ignoring case; NULL when the lead has no value."""
    as_words = _sql("lower(trim(", value, ")) = ", _Param(as_text(wanted).lower()))
    number, when = as_number(wanted), as_datetime(wanted)
    if number is not None:
        typed, bound = _as_number(value), _Param(number)
    elif when is not None:
        typed, bound = _as_timestamp(value), _Param(when)
    else:
        return _sql("(", as_words, ")")
    return _sql("COALESCE(", typed, " = ", bound, ", ", as_words, ")")  # typed is NULL unless the lead's value is of the same kind


def _field_condition(condition: SegmentCondition) -> Fragment:
    value = _field(condition.field or "")
    op = condition.op
    if op == "exists":
        present = _sql("COALESCE(trim(", value, ") <> '', FALSE)")
        return present if condition.expected else _sql("NOT ", present)
    if op == "eq":
        return _sql("COALESCE(", _equals(value, condition.value), ", FALSE)")
    if op in ("in", "not_in"):
        alternatives = [_equals(value, v) for v in condition.values]
        any_of = _sql("COALESCE(", *_interleave(alternatives, " OR "), ", FALSE)")
        return any_of if op == "in" else _sql("NOT ", any_of)
    if op == "contains":
        return _sql("COALESCE(strpos(lower(", value, "), ", _Param(as_text(condition.value).lower()), ") > 0, FALSE)")
    if op in ORDERED_OPS:
        number = as_number(condition.value)
        typed = _as_number(value) if number is not None else _as_timestamp(value)
        bound = number if number is not None else as_datetime(condition.value)
        return _sql("COALESCE(", typed, f" {_COMPARATORS[op]} ", _Param(bound), ", FALSE)")
    raise ValueError(f"op {op!r} is not a field condition")


def _engagement_condition(condition: SegmentCondition, now: datetime) -> Fragment:
    if condition.op == "never_contacted":
        return Fragment("NOT EXISTS (SELECT 1 FROM sends s WHERE s.lead_id = l.lead_id AND s.status = 'sent')")
    since = _Param(now - condition.lookback)
    until = _Param(now)
    if condition.op == "replied_within":
        return _sql("EXISTS (SELECT 1 FROM replies p WHERE p.lead_id = l.lead_id AND p.received_at >= ", since,
                    " AND p.received_at <= ", until, ")")
    if condition.op == "opened_within":
        events = ", ".join(f"'{e}'" for e in ENGAGED_EVENTS)
        return _sql("EXISTS (SELECT 1 FROM delivery_events e JOIN sends s ON e.send_id = s.send_id WHERE s.lead_id = l.lead_id",
                    f" AND e.event_type IN ({events}) AND e.occurred_at >= ", since, " AND e.occurred_at <= ", until, ")")
    if condition.op == "not_contacted_within":
        return _sql("NOT EXISTS (SELECT 1 FROM sends s WHERE s.lead_id = l.lead_id AND s.status = 'sent' AND s.sent_at >= ", since,
                    " AND s.sent_at <= ", until, ")")
    raise ValueError(f"op {condition.op!r} is not an engagement condition")


def _interleave(fragments: list[Fragment], separator: str) -> list[str | Fragment]:
    parts: list[str | Fragment] = []
    for i, fragment in enumerate(fragments):
        parts.extend([separator, fragment] if i else [fragment])
    return parts


def segment_where(segment: Segment | None, now: datetime) -> tuple[str, list[object]]:
    """A condition on `leads l` that holds for the leads in the segment, and its parameters; `TRUE` for no segment.

    `now` is the pipeline clock (UTC): engagement conditions look back from it, so a simulated
    campaign selects the same leads a real one would at that moment.
    """
    if segment is None or not segment.conditions:
        return "TRUE", []
    at = as_datetime(now) or now
    parts = [_engagement_condition(c, at) if c.is_engagement else _field_condition(c) for c in segment.conditions]
    where = _sql(*_interleave([_sql("(", p, ")") for p in parts], " AND "))
    return where.sql, list(where.params)


def select_segment(con: duckdb.DuckDBPyConnection, list_names: list[str], segment: Segment | None, now: datetime,
                   active_only: bool = True) -> pd.DataFrame:
    """The `leads` rows in any of the given lists that the segment selects, each once, in list order then line order.

    Membership comes from `list_members`; only active leads by default: bounced, invalid and opted-out leads
    are never a campaign's audience.
    """
    where, params = segment_where(segment, now)
    status = "l.status = 'active'" if active_only else "TRUE"
    sql = f"""
        WITH member AS (
            SELECT lead_id, list_position(?::VARCHAR[], list_name) AS list_rank, line FROM list_members
            WHERE list_contains(?::VARCHAR[], list_name)
            QUALIFY row_number() OVER (PARTITION BY lead_id ORDER BY list_position(?::VARCHAR[], list_name), line) = 1
        )
        SELECT l.* FROM leads l JOIN member m USING (lead_id)
        WHERE {status} AND ({where}) ORDER BY m.list_rank, m.line, l.lead_id"""
    names = list(list_names)
    return con.execute(sql, [names, names, names, *params]).df()


def count_in_lists(con: duckdb.DuckDBPyConnection, list_names: list[str], active_only: bool = True) -> int:
    """How many distinct (active) leads the lists hold, before any segment."""
    status = "l.status = 'active'" if active_only else "TRUE"
    sql = f"SELECT count(DISTINCT m.lead_id) FROM list_members m JOIN leads l USING (lead_id) WHERE list_contains(?::VARCHAR[], m.list_name) AND {status}"
    return int(con.execute(sql, [list(list_names)]).fetchall()[0][0])


def existing_lists(con: duckdb.DuckDBPyConnection, list_names: list[str]) -> list[str]:
    """Those of the names that are lists with at least one member."""
    rows = con.execute("SELECT DISTINCT list_name FROM list_members WHERE list_contains(?::VARCHAR[], list_name)", [list(list_names)]).fetchall()
    return [n for n in list_names if n in {r[0] for r in rows}]


def custom_columns(con: duckdb.DuckDBPyConnection, list_names: list[str]) -> list[str]:
    """The custom columns at least one active contact of the lists has a value for (imports keep no empty value), sorted."""
    rows = con.execute("""
        SELECT DISTINCT unnest(json_keys(l.custom_vars)) AS name FROM list_members m JOIN leads l USING (lead_id)
        WHERE list_contains(?::VARCHAR[], m.list_name) AND l.status = 'active' AND l.custom_vars IS NOT NULL ORDER BY name
    """, [list(list_names)]).fetchall()
    return [str(r[0]) for r in rows]
