"""What DuckLake cannot run, rewritten in `store/lake.py`, checked on plain DuckDB tables without constraints.

These run in any environment: the rewritten statements are ordinary DuckDB SQL.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from outbound_pipeline.store import lake
from outbound_pipeline.store.schema import TABLES


@pytest.fixture
def con() -> lake.LakeConnection:
    raw = duckdb.connect()
    lake.ensure_guard(raw)
    wrapped = lake.LakeConnection(raw)
    wrapped.execute("CREATE TABLE IF NOT EXISTS kv (k VARCHAR PRIMARY KEY, v INTEGER NOT NULL, note VARCHAR UNIQUE) -- a comment")
    return wrapped


def test_create_table_drops_key_constraints_and_remembers_the_keys() -> None:
    body = TABLES["recipient_steps"]
    stripped = lake.without_keys(body)
    assert "PRIMARY KEY" not in stripped.upper() and "UNIQUE" not in stripped.upper()
    assert lake.keys_from_ddl("a VARCHAR PRIMARY KEY, b VARCHAR NOT NULL UNIQUE, c INT") == [("a",), ("b",)]
    assert lake.keys_from_ddl("a VARCHAR NOT NULL, b INT, -- note\n PRIMARY KEY (a, b)") == [("a", "b")]
    assert lake.KEYS["suppressions"] == [("suppression_id",)]
    duckdb.connect().execute(f"CREATE TABLE t ({stripped})")


def test_every_table_of_the_schema_can_be_created_without_keys() -> None:
    raw = duckdb.connect()
    for name, body in TABLES.items():
        raw.execute(f"CREATE TABLE {name} ({lake.without_keys(body)})")
        assert lake.KEYS[name], f"{name} declares no key: ON CONFLICT on it could not be kept on a lake"


def test_on_conflict_do_nothing_inserts_only_absent_keys(con: lake.LakeConnection) -> None:
    con.execute("INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT DO NOTHING", ["a", 1, "x"])
    con.execute("INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT DO NOTHING", ["a", 2, "y"])  # same k
    con.execute("INSERT INTO kv VALUES (?, ?, ?) ON CONFLICT DO NOTHING", ["b", 3, "x"])  # same unique note
    con.execute("INSERT INTO kv (k, v) SELECT 'c', 4 ON CONFLICT (k) DO NOTHING")
    assert con.execute("SELECT k, v, note FROM kv ORDER BY k").fetchall() == [("a", 1, "x"), ("c", 4, None)]
    assert con.execute(f"SELECT writes FROM {lake.GUARD_TABLE} WHERE table_name = 'kv'").fetchall() == []  # kv is no schema table


def test_on_conflict_do_update_updates_matches_under_its_condition_and_inserts_the_rest(con: lake.LakeConnection) -> None:
    con.execute("INSERT INTO kv VALUES ('a', 1, NULL), ('b', 5, NULL)")
    con.execute("""INSERT INTO kv SELECT * FROM (VALUES ('a', 2, 'n'), ('b', 3, 'm'), ('c', 9, NULL)) s
                   ON CONFLICT (k) DO UPDATE SET v = excluded.v, note = coalesce(excluded.note, kv.note) WHERE excluded.v > kv.v""")
    assert con.execute("SELECT k, v, note FROM kv ORDER BY k").fetchall() == [("a", 2, "n"), ("b", 5, None), ("c", 9, None)]


def test_update_returning_returns_the_updated_rows(con: lake.LakeConnection) -> None:
    con.execute("INSERT INTO kv VALUES ('a', 1, NULL), ('b', 5, NULL)")
    con.execute("CREATE TEMP TABLE marks AS SELECT * FROM (VALUES ('a', 7), ('z', 8)) m(k, v)")
    rows = con.execute("UPDATE kv SET v = m.v + ? FROM marks m WHERE kv.k = m.k AND kv.v < ? RETURNING kv.v", [1, 100]).fetchall()
    assert rows == [(8,)]
    assert con.execute("SELECT v FROM kv WHERE k = 'a'").fetchall() == [(8,)]


def test_placeholders_are_numbered_in_reading_order_outside_quotes() -> None:
    assert lake.numbered("UPDATE t SET a = ? FROM (SELECT * FROM s WHERE b <> ? AND c = '?') x") == \
        "UPDATE t SET a = $1 FROM (SELECT * FROM s WHERE b <> $2 AND c = '?') x"
    raw = duckdb.connect()
    raw.execute("CREATE TABLE r (k INT, s VARCHAR, t TIMESTAMP)")
    raw.execute("INSERT INTO r VALUES (1, 'a', NULL)")
    raw.execute(lake.numbered("UPDATE r SET t = ? FROM (SELECT 1 AS k, 'x' AS s WHERE 'x' <> ?) q WHERE r.k = q.k"),
                [datetime(2026, 1, 5), "y"])
    assert raw.execute("SELECT t FROM r").fetchall() == [(datetime(2026, 1, 5),)]


def test_a_conflicting_commit_is_retried() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise duckdb.TransactionException("Transaction conflict - attempting to delete from file ...")
        return "done"

    assert lake.retry_conflicts(flaky) == "done" and len(calls) == 3
