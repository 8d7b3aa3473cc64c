"""Segments in DuckDB: each operator over lead columns and custom attributes, engagement around `now`, values bound literally."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbound_pipeline.domain.segments import Segment, fields_hold
from outbound_pipeline.store.schema import TABLES
from outbound_pipeline.store.segments import segment_where, select_segment

NOW = datetime(2026, 3, 10, 12, 0)
IMPORTED = datetime(2026, 3, 1)

LEADS = [
    # lead_id, list, first, last, email, phone, company, role, country, custom
    ("ana", "a.csv", "Ana", "García", "ana@x.example", None, "Acme", "COO", "ES",
     {"deal_stage": "proposal", "employees": "120", "renewal": "2026-04-01", "notes": "VIP customer"}),
    ("bob", "a.csv", "Bob", "Wilson", None, "+15555550100", "Gamma LLC", "CEO", "US",
     {"deal_stage": "lead", "employees": "9", "renewal": "2026-02-15", "notes": "New lead from website"}),
    ("cat", "a.csv", "Cat", "O'Brien", "cat@x.example", None, "Beta Inc", "Head of Operations", "GB",
     {"deal_stage": "Discovery", "employees": "abc", "renewal": "soon", "notes": "x' OR 1=1 --"}),
    ("dan", "b.csv", "Dan", None, "dan@x.example", None, None, None, None, {"employees": "1e3"}),
    ("eve", "a.csv", "Eve", "Stone", "eve@x.example", None, "Delta", "CTO", "FR", {"notes": "100% sure_thing"}),
]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    for table in ("leads", "list_members", "sends", "replies", "delivery_events"):
        connection.execute(f"CREATE TABLE {table} ({TABLES[table]})")
    for line, (lead_id, source, first, last, email, phone, company, role, country, custom) in enumerate(LEADS, start=2):
        connection.execute(
            "INSERT INTO leads (lead_id, source_list, source_line, first_name, last_name, email, phone, company, role, country,"
            " custom_vars, status, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
            [lead_id, source, line, first, last, email, phone, company, role, country, json.dumps(custom), IMPORTED])
    connection.execute("INSERT INTO leads (lead_id, source_list, source_line, first_name, custom_vars, status, imported_at)"
                       " VALUES ('zed', 'a.csv', 99, 'Zed', '{}', 'opted_out', ?)", [IMPORTED])
    join_lists(connection)
    send(connection, "s_ana", "ana", "sent", NOW - timedelta(days=2))
    send(connection, "s_bob", "bob", "sent", NOW - timedelta(days=20))
    send(connection, "s_cat", "cat", "failed", None)
    send(connection, "s_eve", "eve", "sent", NOW + timedelta(days=1))  # after `now` on a simulated clock
    event(connection, "e1", "s_ana", "opened", NOW - timedelta(days=1))
    event(connection, "e2", "s_bob", "clicked", NOW - timedelta(days=19))
    event(connection, "e3", "s_bob", "delivered", NOW - timedelta(days=1))
    reply(connection, "r1", "ana", NOW - timedelta(hours=5))
    reply(connection, "r2", "bob", NOW - timedelta(days=40))
    reply(connection, "r3", None, NOW - timedelta(hours=1))  # unattributed
    yield connection
    connection.close()


def join_lists(con: duckdb.DuckDBPyConnection) -> None:
    """Each lead becomes a member of the list named after its file, as a campaign's lead_list import makes it."""
    con.execute("DELETE FROM list_members")
    con.execute("INSERT INTO list_members SELECT source_list, lead_id, source_list, source_line, imported_at FROM leads")


def send(con: duckdb.DuckDBPyConnection, send_id: str, lead_id: str, status: str, sent_at: datetime | None) -> None:
    con.execute("INSERT INTO sends (send_id, draft_id, campaign_id, touch, lead_id, channel, to_address, body, status, cost_usd, attempts,"
                " recorded_at, sent_at, updated_at) VALUES (?, ?, 'c', 1, ?, 'email', 'to', 'body', ?, 0, 1, ?, ?, ?)",
                [send_id, f"d_{send_id}", lead_id, status, IMPORTED, sent_at, IMPORTED])


def event(con: duckdb.DuckDBPyConnection, event_id: str, send_id: str, event_type: str, at: datetime) -> None:
    con.execute("INSERT INTO delivery_events (event_id, send_id, channel, event_type, occurred_at, provider, ingested_at)"
                " VALUES (?, ?, 'email', ?, ?, 'test', ?)", [event_id, send_id, event_type, at, at])


def reply(con: duckdb.DuckDBPyConnection, reply_id: str, lead_id: str | None, at: datetime) -> None:
    con.execute("INSERT INTO replies (reply_id, lead_id, channel, from_address, body, intent, received_at, provider, ingested_at)"
                " VALUES (?, ?, 'email', 'x', 'hi', 'interested', ?, 'test', ?)", [reply_id, lead_id, at, at])


def chosen(con: duckdb.DuckDBPyConnection, *conditions: dict[str, object], lists: tuple[str, ...] = ("a.csv", "b.csv")) -> list[str]:
    frame = select_segment(con, list(lists), Segment.model_validate(list(conditions)), NOW)
    return sorted(frame["lead_id"])


@pytest.mark.parametrize(("condition", "expected"), [
    ({"field": "role", "op": "eq", "value": "coo"}, ["ana"]),
    ({"field": "name", "op": "eq", "value": "bob wilson"}, ["bob"]),
    ({"field": "deal_stage", "op": "eq", "value": "DISCOVERY"}, ["cat"]),
    ({"field": "country", "op": "in", "value": ["es", "GB"]}, ["ana", "cat"]),
    ({"field": "deal_stage", "op": "not_in", "value": ["proposal", "lead"]}, ["cat", "dan", "eve"]),  # no value is not among them
    ({"field": "employees", "op": "gt", "value": 100}, ["ana", "dan"]),  # 1e3 is a number, abc is not
    ({"field": "employees", "op": "lte", "value": "9"}, ["bob"]),
    ({"field": "employees", "op": "eq", "value": 120.0}, ["ana"]),
    ({"field": "employees", "op": "gte", "value": 9}, ["ana", "bob", "dan"]),
    ({"field": "renewal", "op": "lt", "value": "2026-03-01"}, ["bob"]),
    ({"field": "renewal", "op": "gte", "value": date(2026, 2, 15)}, ["ana", "bob"]),
    ({"field": "renewal", "op": "eq", "value": "2026-04-01T00:00"}, ["ana"]),
    ({"field": "notes", "op": "contains", "value": "lead FROM"}, ["bob"]),
    ({"field": "notes", "op": "contains", "value": "100%"}, ["eve"]),
    ({"field": "notes", "op": "contains", "value": "%"}, ["eve"]),  # no LIKE wildcards
    ({"field": "notes", "op": "contains", "value": "_"}, ["eve"]),
    ({"field": "email", "op": "exists"}, ["ana", "cat", "dan", "eve"]),
    ({"field": "email", "op": "exists", "value": False}, ["bob"]),
    ({"field": "deal_stage", "op": "exists"}, ["ana", "bob", "cat"]),
    ({"field": "custom.deal_stage", "op": "exists", "value": False}, ["dan", "eve"]),
    ({"field": "company", "op": "exists", "value": False}, ["dan"]),
])
def test_field_operators(con: duckdb.DuckDBPyConnection, condition: dict[str, object], expected: list[str]) -> None:
    assert chosen(con, condition) == expected


@pytest.mark.parametrize("value", ["O'Brien", "x' OR 1=1 --", "'; DROP TABLE leads; --", '") OR ("1"="1'])
def test_values_with_quotes_or_sql_are_matched_literally(con: duckdb.DuckDBPyConnection, value: str) -> None:
    field = "last_name" if value == "O'Brien" else "notes"
    expected = ["cat"] if value in ("O'Brien", "x' OR 1=1 --") else []
    assert chosen(con, {"field": field, "op": "eq", "value": value}) == expected
    assert chosen(con, {"field": field, "op": "in", "value": [value]}) == expected
    assert chosen(con, {"field": field, "op": "contains", "value": value}) == expected
    assert con.execute("SELECT count(*) FROM leads").fetchone() == (6,)


def test_values_never_appear_in_the_sql_text() -> None:
    segment = Segment.model_validate([{"field": "notes", "op": "eq", "value": "x' OR 1=1 --"}, {"field": "odd", "op": "in", "value": ["zz9"]}])
    sql, params = segment_where(segment, NOW)
    assert "OR 1=1" not in sql and "zz9" not in sql
    assert "x' or 1=1 --" in params and "zz9" in params


@pytest.mark.parametrize(("condition", "expected"), [
    ({"op": "replied_within", "value": "1d"}, ["ana"]),
    ({"op": "replied_within", "value": "4h"}, []),
    ({"op": "replied_within", "value": "60d"}, ["ana", "bob"]),
    ({"op": "opened_within", "value": "7d"}, ["ana"]),  # bob's click is older, his delivery is no open
    ({"op": "opened_within", "value": "30d"}, ["ana", "bob"]),
    ({"op": "not_contacted_within", "value": "7d"}, ["bob", "cat", "dan", "eve"]),  # cat's send failed; eve's is after now
    ({"op": "not_contacted_within", "value": "30d"}, ["cat", "dan", "eve"]),
    ({"op": "never_contacted"}, ["cat", "dan"]),
])
def test_engagement_operators_around_now(con: duckdb.DuckDBPyConnection, condition: dict[str, object], expected: list[str]) -> None:
    assert chosen(con, condition) == expected


def test_conditions_all_hold_and_lists_and_status_restrict(con: duckdb.DuckDBPyConnection) -> None:
    assert chosen(con, {"field": "email", "op": "exists"}, {"op": "never_contacted"}) == ["cat", "dan"]
    assert chosen(con, {"field": "email", "op": "exists"}, {"op": "never_contacted"}, lists=("b.csv",)) == ["dan"]
    assert chosen(con, lists=()) == []
    everyone = select_segment(con, ["a.csv", "b.csv"], None, NOW)
    assert list(everyone["lead_id"]) == ["ana", "bob", "cat", "eve", "dan"]  # list, then line order; opted-out zed left out
    assert "zed" in set(select_segment(con, ["a.csv"], None, NOW, active_only=False)["lead_id"])
    assert segment_where(Segment(), NOW) == ("TRUE", [])


# --------------------------------------------------------------------------- the SQL agrees with the rules in memory

WORDS = st.sampled_from(["10", "9.5", "1e2", "abc", "ABC", "2026-03-01", "2026-03-01 08:00", "2026-02-30", "x'y", "Proposal", ""])
CONDITIONS = st.one_of(
    st.builds(lambda op, v: {"field": "v", "op": op, "value": v}, st.sampled_from(["eq", "contains"]), WORDS.filter(bool)),
    st.builds(lambda op, v: {"field": "v", "op": op, "value": v}, st.sampled_from(["gt", "gte", "lt", "lte"]),
              st.sampled_from(["10", "9.5", 100, "2026-03-01", date(2026, 2, 1)])),
    st.builds(lambda op, vs: {"field": "v", "op": op, "value": vs}, st.sampled_from(["in", "not_in"]), st.lists(WORDS.filter(bool), min_size=1)),
    st.builds(lambda v: {"field": "v", "op": "exists", "value": v}, st.booleans()),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(WORDS, min_size=1, max_size=6), CONDITIONS)
def test_sql_selects_what_the_rules_select(con: duckdb.DuckDBPyConnection, stored: list[str], condition: dict[str, object]) -> None:
    con.execute("DELETE FROM leads")
    for i, value in enumerate(stored):
        con.execute("INSERT INTO leads (lead_id, source_list, source_line, first_name, custom_vars, status, imported_at)"
                    " VALUES (?, 'p.csv', ?, 'P', ?, 'active', ?)", [f"p{i}", i + 2, json.dumps({"v": value}), IMPORTED])
    join_lists(con)
    segment = Segment.model_validate([condition])
    expected = sorted(f"p{i}" for i, value in enumerate(stored) if fields_hold(segment, {}, {"v": value}))
    assert sorted(select_segment(con, ["p.csv"], segment, NOW)["lead_id"]) == expected


def test_a_contact_in_several_lists_is_selected_once_in_the_first_lists_order(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("INSERT INTO list_members VALUES ('vip', 'eve', 'vip.csv', 2, ?), ('vip', 'ana', 'vip.csv', 3, ?)", [IMPORTED, IMPORTED])
    assert list(select_segment(con, ["vip", "a.csv"], None, NOW)["lead_id"]) == ["eve", "ana", "bob", "cat"]
    assert list(select_segment(con, ["vip"], Segment.model_validate([{"field": "country", "op": "eq", "value": "fr"}]), NOW)["lead_id"]) == ["eve"]
