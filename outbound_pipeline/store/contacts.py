"""The contact base: leads (one row per person), the lists they are in, their reported import lines, campaign audiences.

A contact's `lead_id` is stable (its email, else its phone), so the same person imported into several
lists is one lead with several `list_members` rows. Recipients are frozen at launch from the lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.audience import lists_in_spec
from outbound_pipeline.domain.lead_list import ImportResult, skip_list_duplicates
from outbound_pipeline.store.schema import columns
from outbound_pipeline.store.validation import validate
from outbound_pipeline.store.warehouse import insert_new, replace_where


def upsert_leads(con: duckdb.DuckDBPyConnection, leads: pd.DataFrame) -> int:
    """Add new leads and refresh known ones, never their status; returns how many were new.

    A known contact takes the new file's values; a field the new file leaves empty keeps its value, and variables
    are merged (a contact imported into a second list keeps the variables of the first).
    """
    before = con.execute("SELECT count(*) FROM leads").fetchall()[0][0]
    if leads.empty:
        return 0
    cols = columns("leads")
    con.register("_incoming_leads", validate("leads", leads.reindex(columns=cols)))
    try:
        con.execute(f"""
            INSERT INTO leads ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _incoming_leads
            ON CONFLICT (lead_id) DO UPDATE SET
                first_name = excluded.first_name, last_name = coalesce(excluded.last_name, leads.last_name),
                email = coalesce(excluded.email, leads.email), phone = coalesce(excluded.phone, leads.phone),
                company = coalesce(excluded.company, leads.company), role = coalesce(excluded.role, leads.role),
                country = coalesce(excluded.country, leads.country), timezone = coalesce(excluded.timezone, leads.timezone),
                owner_email = coalesce(excluded.owner_email, leads.owner_email),
                custom_vars = json_merge_patch(leads.custom_vars, excluded.custom_vars)::VARCHAR,
                phone_valid = CASE WHEN excluded.phone IS NULL THEN leads.phone_valid ELSE excluded.phone_valid END
        """)
    finally:
        con.unregister("_incoming_leads")
    return con.execute("SELECT count(*) FROM leads").fetchall()[0][0] - before


def replace_rejects(con: duckdb.DuckDBPyConnection, source_list: str, rejects: pd.DataFrame) -> None:
    """The lead list's rejected lines, replacing those of its previous import."""
    replace_where(con, "lead_rejects", rejects, "source_list = ?", [source_list])


def active_leads_of_list(con: duckdb.DuckDBPyConnection, source_list: str) -> pd.DataFrame:
    """The reachable leads imported from one lead list."""
    return con.execute("SELECT * FROM leads WHERE source_list = ? AND status = 'active'", [source_list]).df()


def lead(con: duckdb.DuckDBPyConnection, lead_id: str) -> pd.DataFrame:
    """One lead's row (empty when unknown)."""
    return con.execute("SELECT * FROM leads WHERE lead_id = ?", [lead_id]).df()


def recipient_count(con: duckdb.DuckDBPyConnection, campaign_id: str) -> int:
    return int(con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0])


def first_recipient(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame:
    """The lead row of the campaign's first recipient by lead id (empty without an audience)."""
    return con.execute("SELECT l.* FROM recipients r JOIN leads l USING (lead_id) WHERE r.campaign_id = ? ORDER BY l.lead_id LIMIT 1",
                       [campaign_id]).df()


def freeze_audience(con: duckdb.DuckDBPyConnection, campaign_id: str, lead_ids: pd.Series, now: datetime) -> int:
    """Add the leads as the campaign's active recipients; returns how many were added."""
    return insert_new(con, "recipients", pd.DataFrame({
        "campaign_id": campaign_id, "lead_id": lead_ids, "status": "active", "status_reason": None,
        "variant": None, "added_at": now, "updated_at": now,
    }))


# --------------------------------------------------------------------------- contact lists


@dataclass(frozen=True)
class ListImport:
    """What importing a file into a list did: its result after list duplicates were skipped, and how many contacts were new."""

    result: ImportResult
    new_contacts: int
    list_name: str


def list_members_from_other_files(con: duckdb.DuckDBPyConnection, list_name: str, source_file: str) -> pd.DataFrame:
    """The list's contacts added by files other than `source_file` (re-importing a file refreshes its own rows)."""
    return con.execute("""
        SELECT m.lead_id, l.email, l.phone, m.source_file, m.line FROM list_members m JOIN leads l USING (lead_id)
        WHERE m.list_name = ? AND m.source_file <> ? ORDER BY m.added_at, m.line
    """, [list_name, source_file]).df()


def import_into_list(con: duckdb.DuckDBPyConnection, list_name: str, result: ImportResult, now: datetime) -> ListImport:
    """Add a parsed file to a list: contacts already in the list are skipped and reported, the others upserted and added.

    The file's reported lines replace those of its previous import. One transaction per table write; a re-import is idempotent.
    """
    source = str(result.rejects["source_list"].iloc[0]) if not result.rejects.empty else (
        str(result.leads["source_list"].iloc[0]) if not result.leads.empty else "")
    result = skip_list_duplicates(result, list_name, list_members_from_other_files(con, list_name, source))
    added = upsert_leads(con, result.leads)
    if not result.leads.empty:
        members = pd.DataFrame({"list_name": list_name, "lead_id": result.leads["lead_id"], "source_file": result.leads["source_list"],
                                "line": result.leads["source_line"], "added_at": now})
        con.register("_incoming_members", validate("list_members", members))
        try:
            con.execute("""INSERT INTO list_members SELECT list_name, lead_id, source_file, line, added_at FROM _incoming_members
                           ON CONFLICT (list_name, lead_id) DO UPDATE SET source_file = excluded.source_file, line = excluded.line""")
        finally:
            con.unregister("_incoming_members")
    if source:
        replace_rejects(con, source, result.rejects)
    return ListImport(result, added, list_name)


def running_campaigns_using(con: duckdb.DuckDBPyConnection, list_name: str) -> list[str]:
    """Running campaigns whose audience draws from the list: a list they use cannot take new contacts until they are paused."""
    rows = con.execute("SELECT campaign_id, spec FROM campaigns WHERE status = 'running' ORDER BY campaign_id").fetchall()
    return [campaign_id for campaign_id, spec in rows if list_name in lists_in_spec(spec)]


def lists_overview(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each list: its contacts, how many are active (reachable), the files that filled it and when it last grew."""
    return con.execute("""
        SELECT m.list_name AS list, count(*) AS contacts, count(*) FILTER (WHERE l.status = 'active') AS active,
               count(DISTINCT m.source_file) AS files, max(m.added_at) AS last_added
        FROM list_members m JOIN leads l USING (lead_id) GROUP BY m.list_name ORDER BY m.list_name
    """).df()


def list_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute("SELECT DISTINCT list_name FROM list_members ORDER BY 1").fetchall()]


def list_contacts(con: duckdb.DuckDBPyConnection, list_name: str) -> pd.DataFrame:
    """The list's contacts in the order they were added, with where each came from."""
    return con.execute("""
        SELECT l.lead_id, l.first_name, l.last_name, l.email, l.phone, l.phone_valid, l.company, l.role, l.country, l.timezone,
               l.owner_email, l.status, l.custom_vars, m.source_file, m.line, m.added_at
        FROM list_members m JOIN leads l USING (lead_id) WHERE m.list_name = ? ORDER BY m.added_at, m.source_file, m.line
    """, [list_name]).df()


def search_contacts(con: duckdb.DuckDBPyConnection, query: str, limit: int = 50) -> pd.DataFrame:
    """Contacts whose name, email, phone or company contains the query (ignoring case; a phone matches on its digits)."""
    text = query.strip().lower()
    digits = "".join(ch for ch in text if ch.isdigit())
    return con.execute("""
        SELECT l.lead_id, l.first_name, l.last_name, l.email, l.phone, l.company, l.status,
               (SELECT string_agg(m.list_name, ', ' ORDER BY m.list_name) FROM list_members m WHERE m.lead_id = l.lead_id) AS lists
        FROM leads l
        WHERE strpos(lower(concat_ws(' ', l.first_name, l.last_name)), ?) > 0
           OR strpos(lower(coalesce(l.email, '')), ?) > 0
           OR strpos(lower(coalesce(l.company, '')), ?) > 0
           OR (length(?) >= 3 AND strpos(regexp_replace(coalesce(l.phone, ''), '[^0-9]', '', 'g'), ?) > 0)
        ORDER BY l.first_name, l.last_name, l.lead_id LIMIT ?
    """, [text, text, text, digits, digits, limit]).df()


def contact_history(con: duckdb.DuckDBPyConnection, lead_id: str) -> dict[str, pd.DataFrame]:
    """A contact's record and engagement history: its lists, campaigns, sends, delivery events and replies."""
    one = [lead_id]
    return {
        "contact": con.execute("SELECT * FROM leads WHERE lead_id = ?", one).df(),
        "lists": con.execute("SELECT list_name, source_file, line, added_at FROM list_members WHERE lead_id = ? ORDER BY added_at",
                             one).df(),
        "campaigns": con.execute("""SELECT r.campaign_id, c.status AS campaign_status, r.status, r.variant, r.added_at
                                    FROM recipients r LEFT JOIN campaigns c USING (campaign_id) WHERE r.lead_id = ? ORDER BY r.added_at""",
                                 one).df(),
        "sends": con.execute("""SELECT campaign_id, touch, channel, to_address, status, sent_at, error_code FROM sends
                                WHERE lead_id = ? ORDER BY coalesce(sent_at, recorded_at)""", one).df(),
        "events": con.execute("""SELECT campaign_id, touch, channel, event_type, occurred_at FROM delivery_events
                                 WHERE lead_id = ? ORDER BY occurred_at""", one).df(),
        "replies": con.execute("""SELECT campaign_id, touch, channel, intent, received_at, body FROM replies
                                  WHERE lead_id = ? ORDER BY received_at""", one).df(),
    }


@dataclass(frozen=True)
class Removal:
    """What removing a contact did: the lists it left, and the campaigns whose history keeps its row."""

    lists: list[str]
    deleted: bool
    kept_for: list[str]


def remove_contact(con: duckdb.DuckDBPyConnection, lead_id: str, list_name: str | None = None) -> Removal:
    """Take a contact out of one list, or out of every list and the contact base.

    A contact some campaign has already targeted keeps its `leads` row (its sends, replies and metrics refer
    to it) but leaves every list, so no later campaign selects it; any other contact is deleted.
    """
    if not con.execute("SELECT 1 FROM leads WHERE lead_id = ?", [lead_id]).fetchall():
        raise KeyError(f"no contact {lead_id!r}: find its id with `outbound contacts search`")
    where, params = ("lead_id = ? AND list_name = ?", [lead_id, list_name]) if list_name else ("lead_id = ?", [lead_id])
    left = [row[0] for row in con.execute(f"SELECT list_name FROM list_members WHERE {where} ORDER BY 1", params).fetchall()]
    if list_name and not left:
        raise KeyError(f"contact {lead_id!r} is not in list {list_name!r}")
    campaigns = [row[0] for row in con.execute("SELECT DISTINCT campaign_id FROM recipients WHERE lead_id = ? ORDER BY 1",
                                               [lead_id]).fetchall()]
    con.execute("BEGIN")
    try:
        con.execute(f"DELETE FROM list_members WHERE {where}", params)
        deleted = not list_name and not campaigns
        if deleted:
            con.execute("DELETE FROM leads WHERE lead_id = ?", [lead_id])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return Removal(left, deleted, campaigns if not list_name else [])
