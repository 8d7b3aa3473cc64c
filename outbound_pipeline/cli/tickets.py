"""`outbound tickets`: the owners' reply tickets (human reply mode), listed and closed from a terminal.

A ticket is opened by tracking for every reply that needs a person; closing it records who
closed it, when and (optionally) what was done, and a closed ticket stays closed.
"""

from __future__ import annotations

import argparse
from datetime import datetime

import duckdb

from outbound_pipeline import settings
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import events, warehouse


class TicketError(ValueError):
    """A ticket request that cannot be applied; nothing is changed."""


def close_ticket(con: duckdb.DuckDBPyConnection, ticket_id: str, by: str, note: str | None, now: datetime) -> None:
    """Close an open ticket, recording who and when; an unknown or already closed ticket is refused."""
    if not by.strip():
        raise TicketError("say who closes the ticket: --by NAME")
    found = events.ticket_state(con, ticket_id)
    if found is None:
        raise TicketError(f"no such ticket: {ticket_id} (see `outbound tickets list`)")
    status, closed_by, closed_at = found
    if status == "closed":
        raise TicketError(f"ticket {ticket_id} is already closed (by {closed_by} at {closed_at})")
    events.close_open_ticket(con, ticket_id, by.strip(), note, now)


def _one_line(text: object, width: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _list(args: argparse.Namespace) -> int:
    with warehouse.connect(settings.duckdb_path()) as con:
        rows = events.list_tickets(con, args.campaign, args.open)
    if rows.empty:
        print("No tickets" + (" open" if args.open else "") + (f" for {args.campaign}" if args.campaign else "") + ".")
        return 0
    for row in rows.to_dict("records"):
        print(f"{row['ticket_id']}  {row['status']:<6}  {row['campaign_id'] or '(no campaign)'}  owner {row['owner_email'] or '-'}  "
              f"opened {row['created_at']}")
        print(f"    {_one_line(row['summary'])}")
        if row["status"] == "closed":
            note = row["close_note"]
            print(f"    closed by {row['closed_by']} at {row['closed_at']}" + (f": {note}" if isinstance(note, str) else ""))
    counts = rows["status"].value_counts()
    print(f"{len(rows)} tickets: {int(counts.get('open', 0))} open, {int(counts.get('closed', 0))} closed")
    return 0


def _close(args: argparse.Namespace) -> int:
    with warehouse.connect(settings.duckdb_path()) as con:
        close_ticket(con, args.ticket_id, args.by or "", args.note, pipeline_now())
    print(f"{args.ticket_id}: closed by {args.by.strip()}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    tickets = subparsers.add_parser("tickets", help="list and close the owners' reply tickets")
    sub = tickets.add_subparsers(dest="tickets_command", required=True)

    listing = sub.add_parser("list", help="tickets, oldest first")
    listing.add_argument("--campaign", help="only this campaign's tickets")
    listing.add_argument("--open", action="store_true", help="only open tickets")
    listing.set_defaults(func=_list)

    close = sub.add_parser("close", help="close a ticket, recording who closed it and when")
    close.add_argument("ticket_id", metavar="TICKET_ID")
    close.add_argument("--by", required=True, help="who closes it")
    close.add_argument("--note", help="what was done (kept on the ticket)")
    close.set_defaults(func=_close)
