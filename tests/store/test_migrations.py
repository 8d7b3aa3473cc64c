"""A database file written by an older version is migrated in place: every row kept, every column added."""

from __future__ import annotations

from pathlib import Path

import duckdb

from outbound_pipeline.store import warehouse
from outbound_pipeline.store.migrations import MIGRATIONS, current_version
from outbound_pipeline.store.schema import TABLES, columns

# The shape of three tables before versioned migrations existed (the first release).
OLD_DDL = {
    "drafts": """draft_id VARCHAR PRIMARY KEY, campaign_id VARCHAR NOT NULL, touch INTEGER NOT NULL, lead_id VARCHAR NOT NULL,
                 channel VARCHAR NOT NULL, tone VARCHAR, cta VARCHAR, subject VARCHAR, body VARCHAR NOT NULL,
                 cited_snippet_ids VARCHAR NOT NULL, composer VARCHAR NOT NULL, flags VARCHAR NOT NULL, cost_usd DOUBLE NOT NULL,
                 created_at TIMESTAMP NOT NULL""",
    "tickets": """ticket_id VARCHAR PRIMARY KEY, reply_id VARCHAR NOT NULL, campaign_id VARCHAR, lead_id VARCHAR, owner_email VARCHAR,
                  status VARCHAR NOT NULL, summary VARCHAR NOT NULL, context VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL""",
    "reply_drafts": "reply_id VARCHAR PRIMARY KEY, body VARCHAR",  # a table later versions no longer use: kept, never dropped
}


def old_file(path: Path) -> None:
    con = duckdb.connect(str(path))
    for table, ddl in OLD_DDL.items():
        con.execute(f"CREATE TABLE {table} ({ddl})")
    con.execute("""INSERT INTO drafts VALUES ('drf_1', 'c', 1, 'lead_1', 'email', NULL, NULL, 'Hi', 'Hello there', '["s"]', 'rules', '[]',
                   0.0, TIMESTAMP '2025-06-01 10:00:00')""")
    con.execute("INSERT INTO tickets VALUES ('tkt_1', 'rpl_1', 'c', 'lead_1', 'o@example.com', 'open', 'Ana asked', '{}', TIMESTAMP '2025-06-01')")
    con.execute("INSERT INTO reply_drafts VALUES ('rpl_1', 'old answer')")
    con.close()


def test_an_old_file_gains_every_table_and_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old_file(path)
    with warehouse.connect(path) as con:
        assert current_version(con) == max(m.version for m in MIGRATIONS)
        for table in TABLES:
            have = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            assert set(columns(table)) <= set(have), table
        assert con.execute("SELECT draft_id, body, reply_id FROM drafts").fetchall() == [("drf_1", "Hello there", None)]
        assert con.execute("SELECT ticket_id, status, closed_by FROM tickets").fetchall() == [("tkt_1", "open", None)]
        assert con.execute("SELECT body FROM reply_drafts").fetchall() == [("old answer",)]
        versions = [r[0] for r in con.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    assert versions == sorted(m.version for m in MIGRATIONS)  # applied in version order, whatever order they are listed in


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    with warehouse.connect(path) as con:
        first = con.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()
    warehouse._migrated.clear()  # as a new process would
    with warehouse.connect(path) as con:
        assert con.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall() == first


def test_versions_are_consecutive() -> None:
    assert sorted(m.version for m in MIGRATIONS) == list(range(1, len(MIGRATIONS) + 1))
