"""Versioned schema migrations: every database file, however old, is brought to the current shape.

Each migration runs once, in order, in its own transaction, and is recorded in
`schema_migrations`. A migration only ever adds (tables, columns); nothing is dropped,
so a file written by an older version keeps every row. New migrations are appended to
`MIGRATIONS` with the next version number; released ones are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from outbound_pipeline.store.schema import TABLES, column_specs

LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
)"""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


def _add_columns(table: str, *names: str) -> tuple[str, ...]:
    """ALTER statements adding columns (typed as in the current DDL) that older files lack."""
    types = {name: sql_type for name, sql_type, _ in column_specs(table)}
    return tuple(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {types[name]}" for name in names)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "every table of the contract", tuple(f"CREATE TABLE IF NOT EXISTS {name} ({cols})" for name, cols in TABLES.items())),
    Migration(2, "answer drafts name the reply they answer", _add_columns("drafts", "reply_id")),
    Migration(3, "sends keep the email Message-ID and their retry count", _add_columns("sends", "message_id", "retries")),
    Migration(4, "replies keep thread references, how they were attributed, and their Message-ID",
              _add_columns("replies", "thread_refs", "attribution", "message_id")),
    Migration(5, "campaign metrics count answers to replies", _add_columns("campaign_metrics", "answers_sent")),
    Migration(6, "notifications record when they were emailed", _add_columns("notifications", "emailed_at")),
    Migration(7, "tickets record who closed them, when and why", _add_columns("tickets", "closed_at", "closed_by", "close_note")),
    Migration(8, "campaign events carry a per-campaign sequence", _add_columns("campaign_events", "seq")),
    Migration(9, "contact lists: list membership (existing leads join the list named after their file), phone validity, "
                 "reported lines of kind warning, skipped or rejected",
              (f"CREATE TABLE IF NOT EXISTS list_members ({TABLES['list_members']})",
               *_add_columns("leads", "phone_valid"), *_add_columns("lead_rejects", "kind"),
               "INSERT INTO list_members SELECT source_list, lead_id, source_list, source_line, imported_at FROM leads ON CONFLICT DO NOTHING",
               "UPDATE lead_rejects SET kind = 'rejected' WHERE kind IS NULL")),
    Migration(10, "metrics to the product's definitions: lead counts, clicks, conversions, response time, cost per reply; "
                 "daily metrics history; conversions recorded by the user's system",
              (*_add_columns("campaign_metrics", "queued", "clicked", "complained", "converted", "leads_reached", "emails_sent",
                             "emails_delivered", "emails_bounced", "whatsapp_delivered", "click_rate", "complaint_rate",
                             "conversion_rate", "response_median_s", "response_p90_s", "cost_per_reply_usd", "cost_per_conversion_usd"),
               # a rollup, rewritten whole on every refresh: its money column becomes exact, no row is lost
               "ALTER TABLE campaign_metrics ALTER COLUMN cost_usd TYPE DECIMAL(18,6)",
               *_add_columns("funnel_metrics", "waiting"),
               *(f"CREATE TABLE IF NOT EXISTS {name} ({TABLES[name]})" for name in ("metrics_daily", "conversions")))),
    Migration(11, "voice campaigns: contacts to call, calls, transcript turns, call metrics, the dial step's landing cursor",
              tuple(f"CREATE TABLE IF NOT EXISTS {name} ({TABLES[name]})"
                    for name in ("call_contacts", "calls", "call_turns", "call_metrics", "dial_cursor"))),
    Migration(13, "metrics: human opens beside all opens; alerts raised to campaign owners; per-message facts folded in incrementally",
              (*_add_columns("campaign_metrics", "human_opened", "human_open_rate"),
               *_add_columns("metrics_daily", "human_opened", "human_open_rate"),
               *(f"CREATE TABLE IF NOT EXISTS {name} ({TABLES[name]})" for name in ("alerts", "send_facts", "send_facts_folds")))),
    Migration(12, "HTTP API: hashed API keys, the audit trail of changes made over HTTP, campaigns created through the API",
              tuple(f"CREATE TABLE IF NOT EXISTS {name} ({TABLES[name]})" for name in ("api_keys", "api_audit", "api_campaigns"))),
)


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(LEDGER)
    return int(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0])


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute(LEDGER)
    return {int(row[0]) for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply, in version order, every migration the file's ledger lacks; returns the versions applied.

    Checking the ledger rather than the highest version keeps a file correct when a
    branch's migration with a lower number lands after a higher one was applied."""
    applied = []
    done = applied_versions(con)
    for migration in sorted(MIGRATIONS, key=lambda m: m.version):
        if migration.version in done:
            continue
        con.execute("BEGIN")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        [migration.version, migration.description, datetime.now(UTC).replace(tzinfo=None)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
