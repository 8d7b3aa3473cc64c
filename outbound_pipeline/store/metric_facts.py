"""`send_facts`: what happened to each message of a campaign step, and when, kept up to date incrementally for the rollups.

One row per draft of a campaign step (touch > 0): its send, and the moment each fact about it first became
true (delivered, opened, opened by a person, read, clicked, bounced, failed, complained, opted out, answered,
replied, accepted the call to action, converted), by the definitions of `store.views` and `domain.funnel`.
With the times kept, counting "as of" any moment is a filter (`delivered_at < cutoff`), so the campaign,
funnel and variant rollups and every daily partition read this table instead of aggregating every delivery
event again.

`fold_send_facts` is the table's one writer; every rollup calls it first. It folds in only what is new since
the last fold: events, replies and conversions by `ingested_at`/`recorded_at`, drafts and step entries by
their creation time, sends by `updated_at` (every change to a send stamps it). Times only move earlier
(`least`), so folding a row twice changes nothing. A table that gained rows stamped before the last fold
(an import of old events, a clock set back) is noticed by its row count and the facts are rebuilt whole.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from outbound_pipeline.domain.funnel import (
    BOUNCED_EVENTS,
    CLICKED_EVENTS,
    COMPLAINED_EVENTS,
    DELIVERED_EVENTS,
    FAILED_EVENTS,
    OPENED_EVENTS,
    OPTED_OUT_EVENTS,
    READ_EVENTS,
)
from outbound_pipeline.domain.metrics import MACHINE_OPEN_SECONDS
from outbound_pipeline.store.schema import TABLES
from outbound_pipeline.store.views import FROM_PROXY, OPTED_OUT_BY_REPLY, REPLIED, REPLIED_TO_CTA, is_event

# Each source, the column that stamps a new or changed row, and how it is folded in.
SOURCES = {"drafts": "created_at", "recipient_steps": "entered_at", "sends": "updated_at", "delivery_events": "ingested_at",
           "replies": "ingested_at", "conversions": "recorded_at"}
BEGINNING = datetime(1970, 1, 1)

EVENT_TIMES = {"delivered_at": DELIVERED_EVENTS, "opened_at": OPENED_EVENTS, "read_at": READ_EVENTS, "clicked_at": CLICKED_EVENTS,
               "bounced_at": BOUNCED_EVENTS, "failed_at": FAILED_EVENTS, "complained_at": COMPLAINED_EVENTS,
               "opted_out_at": OPTED_OUT_EVENTS}
REPLY_TIMES = {"answered_at": "true", "replied_at": REPLIED, "cta_at": REPLIED_TO_CTA, "opt_out_reply_at": OPTED_OUT_BY_REPLY}

FOLD_DRAFTS = """
INSERT INTO send_facts (draft_id, campaign_id, touch, lead_id, draft_channel, draft_cost, drafted_at, variant, step, entered_at)
SELECT d.draft_id, d.campaign_id, d.touch, d.lead_id, d.channel, d.cost_usd::DECIMAL(18, 6), d.created_at, r.variant, r.step, r.entered_at
FROM drafts d LEFT JOIN recipient_steps r USING (campaign_id, lead_id, touch)
WHERE d.touch > 0 AND d.created_at >= $since
ON CONFLICT (draft_id) DO UPDATE SET draft_channel = EXCLUDED.draft_channel, draft_cost = EXCLUDED.draft_cost, drafted_at = EXCLUDED.drafted_at
"""

FOLD_STEPS = """
UPDATE send_facts f SET variant = r.variant, step = r.step, entered_at = r.entered_at
FROM recipient_steps r
WHERE r.entered_at >= $since AND f.campaign_id = r.campaign_id AND f.lead_id = r.lead_id AND f.touch = r.touch
"""

# A send whose draft is not (yet) folded stands for it: composing cost 0, drafted when the send was recorded.
FOLD_SENDS = """
INSERT INTO send_facts (draft_id, campaign_id, touch, lead_id, draft_channel, draft_cost, drafted_at, variant, step, entered_at,
                        send_id, channel, status, send_cost, recorded_at, sent_at, updated_at)
SELECT s.draft_id, s.campaign_id, s.touch, s.lead_id, s.channel, 0, s.recorded_at, r.variant, r.step, r.entered_at,
       s.send_id, s.channel, s.status, s.cost_usd::DECIMAL(18, 6), s.recorded_at, s.sent_at, s.updated_at
FROM sends s LEFT JOIN recipient_steps r USING (campaign_id, lead_id, touch)
WHERE s.updated_at >= $since AND s.touch > 0
ON CONFLICT (draft_id) DO UPDATE SET send_id = EXCLUDED.send_id, channel = EXCLUDED.channel, status = EXCLUDED.status,
    send_cost = EXCLUDED.send_cost, recorded_at = EXCLUDED.recorded_at, sent_at = EXCLUDED.sent_at, updated_at = EXCLUDED.updated_at
"""


def fold_events_sql(event_types: set[str]) -> str | None:
    """The UPDATE folding new delivery events in, one pass per message: when each fact first held, and when it was first
    opened by a person (an open or click naming no image proxy, at least MACHINE_OPEN_SECONDS after the first delivery
    receipt, this fold's or an earlier one, else after the send). It writes only the facts that `event_types`, the
    types among the new events, can change (a tick that brought only opens rewrites no delivery time); None: nothing to do."""
    times = {name: events for name, events in EVENT_TIMES.items() if event_types & set(events)}
    human = bool(event_types & set(OPENED_EVENTS))
    if not times:
        return None
    assignments = [f"{name} = least(f.{name}, e.{name})" for name in times]
    if human:
        receipt = "coalesce(least(f.delivered_at, e.delivered_at), f.sent_at)" if "delivered_at" in times else "coalesce(f.delivered_at, f.sent_at)"
        assignments.append(f"""human_opened_at = least(f.human_opened_at, list_min(list_filter(e.unproxied_opens,
            lambda opened: {receipt} IS NULL OR opened >= {receipt} + INTERVAL {MACHINE_OPEN_SECONDS} SECOND)))""")
    columns = [f"min(occurred_at) FILTER (WHERE {is_event('event_type', events)}) AS {name}" for name, events in times.items()]
    if human:
        columns.append(f"list(occurred_at) FILTER (WHERE {is_event('event_type', OPENED_EVENTS)} AND NOT {FROM_PROXY}) AS unproxied_opens")
    # a message whose facts the new events cannot move earlier (a second open, a late receipt) is not rewritten
    changes = [f"e.{name} < coalesce(f.{name}, 'infinity'::TIMESTAMP)" for name in times]
    if human:
        changes.append("list_min(e.unproxied_opens) < coalesce(f.human_opened_at, 'infinity'::TIMESTAMP)")
    return f"""
UPDATE send_facts f SET {", ".join(assignments)}
FROM (SELECT send_id, {", ".join(columns)}
      FROM delivery_events WHERE ingested_at >= $since AND send_id IS NOT NULL GROUP BY send_id) e
WHERE f.send_id = e.send_id AND ({" OR ".join(changes)})
"""


_REPLY_COLUMNS = ", ".join(f"min(received_at) FILTER (WHERE {condition}) AS {name}" for name, condition in REPLY_TIMES.items())
FOLD_REPLIES = f"""
UPDATE send_facts f SET {", ".join(f"{name} = least(f.{name}, r.{name})" for name in REPLY_TIMES)}
FROM (SELECT send_id, {_REPLY_COLUMNS} FROM replies WHERE ingested_at >= $since AND send_id IS NOT NULL GROUP BY send_id) r
WHERE f.send_id = r.send_id
"""

# A conversion reported by the user's system counts for the lead's last message sent before it.
FOLD_CONVERSIONS = """
UPDATE send_facts f SET converted_at = least(f.converted_at, c.at)
FROM (SELECT arg_max(x.send_id, x.sent_at) AS send_id, any_value(c.occurred_at) AS at
      FROM conversions c JOIN send_facts x ON x.campaign_id = c.campaign_id AND x.lead_id = c.lead_id
      WHERE c.recorded_at >= $since AND x.status = 'sent' AND x.sent_at <= c.occurred_at
      GROUP BY c.conversion_id) c
WHERE f.send_id = c.send_id
"""

# In order: drafts and step entries before sends, receipts before replies; `None` stands for `fold_events_sql`.
FOLDS: tuple[tuple[str, str | None], ...] = (("drafts", FOLD_DRAFTS), ("recipient_steps", FOLD_STEPS), ("sends", FOLD_SENDS),
                                             ("delivery_events", None), ("replies", FOLD_REPLIES), ("conversions", FOLD_CONVERSIONS))


def fold_send_facts(con: duckdb.DuckDBPyConnection) -> int:
    """Bring `send_facts` up to date with what was written since the last fold (or rebuild it); returns the rows it holds.

    On a read-only connection (`outbound report`) the fold goes into temporary copies that shadow the tables for
    this connection's statements, and the file is left as it is.
    """
    if _read_only(con):
        _shadow_in_temp(con)
    state = {str(source): (folded_to, int(rows)) for source, folded_to, rows in
             con.execute("SELECT source, folded_to, row_count FROM send_facts_folds").fetchall()}
    stamps = {}
    for source, column in SOURCES.items():
        rows, newest = con.execute(f"SELECT count(*), max({column}) FROM {source}").fetchall()[0]
        stamps[source] = (newest, int(rows))
    # a source with nothing written since the last fold has nothing to fold: its statement (a scan, and a join to build)
    # is skipped; a day that brought only events and replies rewrites no draft or send
    quiet = {source for source, (newest, rows) in stamps.items()
             if source in state and rows == state[source][1] and (newest is None or newest <= state[source][0])}
    if quiet == set(SOURCES):
        return int(con.execute("SELECT count(*) FROM send_facts").fetchall()[0][0])  # nothing written since the last fold
    since = {source: state[source][0] if source in state else BEGINNING for source in SOURCES}
    if not _only_appended_after(con, state, stamps):
        since = dict.fromkeys(SOURCES, BEGINNING)
    rebuild = all(s == BEGINNING for s in since.values())
    if rebuild:
        quiet = set()
    con.execute("BEGIN")
    try:
        if rebuild:
            con.execute("DELETE FROM send_facts")
        for source, statement in FOLDS:
            if source in quiet:
                continue
            if statement is None:  # folding in: every new event is stamped after the last fold (`_only_appended_after`)
                after = ">" if since[source] != BEGINNING else ">="
                new_types = {str(row[0]) for row in con.execute(
                    f"SELECT DISTINCT event_type FROM delivery_events WHERE ingested_at {after} ? AND send_id IS NOT NULL",
                    [since[source]]).fetchall()}
                statement = fold_events_sql(new_types)
            if statement is not None:
                con.execute(statement, {"since": since[source]})
        con.execute("DELETE FROM send_facts_folds")
        con.executemany("INSERT INTO send_facts_folds VALUES (?, ?, ?)",
                        [[source, newest or BEGINNING, rows] for source, (newest, rows) in stamps.items()])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(con.execute("SELECT count(*) FROM send_facts").fetchall()[0][0])


def _only_appended_after(con: duckdb.DuckDBPyConnection, state: dict[str, tuple[datetime, int]],
                         stamps: dict[str, tuple[datetime | None, int]]) -> bool:
    """True when every source's new rows are stamped at or after the last fold: rows now = rows then + rows stamped since."""
    if set(state) != set(SOURCES):
        return False
    for source, column in SOURCES.items():
        folded_to, rows_then = state[source]
        rows_now = stamps[source][1]
        newer = int(con.execute(f"SELECT count(*) FROM {source} WHERE {column} > ?", [folded_to]).fetchall()[0][0])
        if source == "sends":  # sends change in place, each change stamping `updated_at`: the new ones are among those
            if rows_now < rows_then or rows_now - rows_then > newer:
                return False
        elif rows_now != rows_then + newer:
            return False
    return True


def _read_only(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0])


def _shadow_in_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Temporary `send_facts` and `send_facts_folds` holding the file's rows (none in a file older than them)."""
    if con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = 'send_facts'").fetchall()[0][0]:
        return
    database = con.execute("SELECT current_database()").fetchall()[0][0].replace('"', '""')
    stored = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
                                            "AND table_name IN ('send_facts', 'send_facts_folds')").fetchall()}
    for table in ("send_facts", "send_facts_folds"):
        con.execute(f"CREATE TEMP TABLE {table} ({TABLES[table]})")
        if table in stored and "send_facts_folds" in stored:
            con.execute(f'INSERT INTO temp.main.{table} SELECT * FROM "{database}".main.{table}')
