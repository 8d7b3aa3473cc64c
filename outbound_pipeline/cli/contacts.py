"""`outbound contacts ...`: the contact base and its lists: import, lists, show, search, remove, export.

Each command is a function taking the database path and explicit values (tests call them directly) and
returning the text to print, plus an argparse wrapper. A list a running campaign draws on takes no new
contacts: pause the campaign first (its audience is frozen at launch either way).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.domain.lead_list import LeadListError, import_lead_list
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import contacts, reachability, warehouse
from outbound_pipeline.store.snapshot import export_csv

PREVIEW_LINES = 20


class ListInUse(ValueError):
    """Contacts cannot be added to a list a running campaign draws on."""


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) if not frame.empty else "(none)"


def import_file(path: str, list_name: str, db_path: str, region: str = "US", now: datetime | None = None) -> str:
    """Import a contact file into a list and return the summary: rows read, imported, skipped, rejected, then what was reported."""
    now = now or pipeline_now()  # OUTBOUND_NOW when pinned, like every other command
    if not list_name.strip():
        raise ValueError("--list needs a name")
    with warehouse.connect(db_path) as con:
        running = contacts.running_campaigns_using(con, list_name)
    if running:
        raise ListInUse(f"list {list_name!r} is used by running campaign(s) {', '.join(running)}: contacts cannot be added while it runs; "
                        f"pause it first (`outbound campaign pause {running[0]}`), then import")
    try:
        result = import_lead_list(path, region, imported_at=now)
    except LeadListError as exc:
        raise ValueError(f"{exc} (nothing was imported)") from None
    with warehouse.connect(db_path) as con:
        done = contacts.import_into_list(con, list_name, result, now)
    summary = done.result.summary()
    lines = [f"{Path(path).name} -> list {list_name!r}: {summary['read']} rows read, {summary['imported']} imported "
             f"({done.new_contacts} new contacts), {summary['skipped']} skipped (duplicates), {summary['rejected']} rejected"]
    if summary["phones_not_valid"]:
        lines.append(f"{summary['phones_not_valid']} phone(s) are possible but not known as assigned (e.g. 555 numbers): imported, "
                     "marked phone_valid = false")
    lines += [f"warning: {w}" for w in done.result.warnings]
    reported = done.result.rejects[done.result.rejects["line_number"] > 1] if not done.result.rejects.empty else done.result.rejects
    if not reported.empty:
        lines.append("")
        lines.append(_table(reported[["line_number", "kind", "reason"]].head(PREVIEW_LINES)))
        if len(reported) > PREVIEW_LINES:
            lines.append(f"... {len(reported) - PREVIEW_LINES} more in table lead_rejects (source_list = {Path(path).name!r})")
    return "\n".join(lines)


def show_lists(db_path: str) -> str:
    with warehouse.connect(db_path) as con:
        frame = contacts.lists_overview(con)
    return _table(frame) if not frame.empty else "No lists yet: `outbound contacts import FILE --list NAME` creates one."


def show_contact(lead_id: str, db_path: str) -> str:
    """The contact's fields and its engagement history: lists, campaigns, sends, events, replies."""
    with warehouse.connect(db_path) as con:
        history = contacts.contact_history(con, lead_id)
        history["opt-outs"] = reachability.opt_outs(con, lead_id)
    contact = history.pop("contact")
    if contact.empty:
        raise KeyError(f"no contact {lead_id!r}: find its id with `outbound contacts search`")
    row = contact.iloc[0].to_dict()
    custom = json.loads(row.pop("custom_vars") or "{}")
    fields = [f"{k}: {v}" for k, v in row.items() if v is not None and not (isinstance(v, float) and pd.isna(v))]
    parts = [*fields, f"variables: {json.dumps(custom, ensure_ascii=False)}", f"preferences: {_preferences(history['opt-outs'])}"]
    for name, frame in history.items():
        parts += ["", f"{name} ({len(frame)})", _table(frame)]
    return "\n".join(parts)


def _preferences(opted: pd.DataFrame) -> str:
    """One line: which channels the contact may still be sent on."""
    channels = set(opted["channel"]) if not opted.empty else set()
    if "all" in channels:
        return "opted out of every channel"
    if channels:
        return f"opted out of {', '.join(sorted(channels))}; other channels allowed"
    return "no opt-out"


def search(query: str, db_path: str) -> str:
    with warehouse.connect(db_path) as con:
        frame = contacts.search_contacts(con, query)
    return _table(frame) if not frame.empty else f"no contact matches {query!r}"


def remove(lead_id: str, db_path: str, list_name: str | None = None) -> str:
    with warehouse.connect(db_path) as con:
        done = contacts.remove_contact(con, lead_id, list_name)
    where = ", ".join(repr(n) for n in done.lists) or "no list"
    if list_name:
        return f"removed {lead_id} from list {list_name!r}"
    if done.deleted:
        return f"removed {lead_id} from {where} and from the contact base"
    return (f"removed {lead_id} from {where}; its record stays for the history of campaign(s) {', '.join(done.kept_for)}, "
            "and no later campaign will select it")


def export(list_name: str, out: str, db_path: str) -> str:
    """The list as CSV (variables as columns), formula-looking cells neutralised for spreadsheets."""
    with warehouse.connect(db_path) as con:
        frame = contacts.list_contacts(con, list_name)
    if frame.empty:
        raise KeyError(f"list {list_name!r} has no contacts")
    variables = pd.DataFrame([json.loads(v or "{}") for v in frame.pop("custom_vars")], index=frame.index)
    frame = pd.concat([frame, variables.drop(columns=[c for c in variables.columns if c in frame.columns])], axis=1)
    target = export_csv(frame, out)
    return f"exported {len(frame)} contacts of list {list_name!r} to {target}"


def _import(args: argparse.Namespace) -> int:
    print(import_file(args.file, args.list, str(settings.duckdb_path()), args.region))
    return 0


def _lists(args: argparse.Namespace) -> int:
    print(show_lists(str(settings.duckdb_path())))
    return 0


def _show(args: argparse.Namespace) -> int:
    print(show_contact(args.lead_id, str(settings.duckdb_path())))
    return 0


def _search(args: argparse.Namespace) -> int:
    print(search(args.query, str(settings.duckdb_path())))
    return 0


def _remove(args: argparse.Namespace) -> int:
    print(remove(args.lead_id, str(settings.duckdb_path()), args.list))
    return 0


def _export(args: argparse.Namespace) -> int:
    print(export(args.list, args.out or f"{args.list}.csv", str(settings.duckdb_path())))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("contacts", help="the contact base and its lists: import, lists, show, search, remove, export")
    sub = group.add_subparsers(dest="contacts_command", required=True)

    imp = sub.add_parser("import", help="import a CSV into a list (duplicates by email or phone skipped and reported)")
    imp.add_argument("file")
    imp.add_argument("--list", required=True, help="the list to add the contacts to (created when new)")
    imp.add_argument("--region", default="US", help="country for phone numbers written without a country code (default US)")
    imp.set_defaults(func=_import)

    sub.add_parser("lists", help="every list with its contacts").set_defaults(func=_lists)

    show = sub.add_parser("show", help="a contact: fields, lists, campaigns, sends, events, replies")
    show.add_argument("lead_id")
    show.set_defaults(func=_show)

    find = sub.add_parser("search", help="contacts whose name, email, phone or company contains the query")
    find.add_argument("query")
    find.set_defaults(func=_search)

    rm = sub.add_parser("remove", help="take a contact out of one list (--list) or out of every list and the contact base")
    rm.add_argument("lead_id")
    rm.add_argument("--list", default=None)
    rm.set_defaults(func=_remove)

    out = sub.add_parser("export", help="a list as CSV, cells starting with = + - @ neutralised")
    out.add_argument("--list", required=True)
    out.add_argument("--out", default=None, help="output file (default: <list>.csv)")
    out.set_defaults(func=_export)
