"""`outbound apikey create|list|revoke`: keys for the REST API and for signing in to the review inbox and campaign pages.

A key is printed once, when created; only its SHA-256 is stored. Every change made with a key is recorded under its
name (`api_audit`, `campaign_events`, `approvals.reviewer`).
"""

from __future__ import annotations

import argparse

from outbound_pipeline import settings
from outbound_pipeline.http import auth
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import api_keys, warehouse


def create(name: str, db_path: str, role: str = "api") -> str:
    key = auth.create_key(db_path, name, role, pipeline_now())
    what = "the REST API and the pages" if role == "api" else "the review inbox and the campaign pages"
    return (f"{key}\n\nAPI key {name!r} ({role}) for {what}. It is shown only now: store it in your secrets manager.\n"
            f"Use it as `Authorization: Bearer <key>`, or paste it on the sign-in page.")


def listing(db_path: str) -> str:
    with warehouse.connect(db_path) as con:
        frame = api_keys.list_keys(con)
    return frame.to_string(index=False) if not frame.empty else "no API keys yet: `outbound apikey create NAME`"


def revoke(name: str, db_path: str) -> str:
    with warehouse.connect(db_path) as con:
        done = api_keys.revoke(con, name, pipeline_now())
    if not done:
        raise KeyError(f"no live API key named {name!r} (see `outbound apikey list`)")
    return f"revoked {name!r}: requests and sessions using it are refused from now on"


def _run(args: argparse.Namespace) -> int:
    db = str(settings.duckdb_path())
    if args.apikey_command == "create":
        print(create(args.name, db, args.role))
    elif args.apikey_command == "list":
        print(listing(db))
    else:
        print(revoke(args.name, db))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("apikey", help="create, list and revoke keys for the HTTP API and the review inbox")
    sub = group.add_subparsers(dest="apikey_command", required=True)
    make = sub.add_parser("create", help="create a key and print it once (only its hash is stored)")
    make.add_argument("name", help="who holds it; recorded on every change made with it")
    make.add_argument("--role", choices=auth.ROLES, default="api",
                      help="api: REST API and pages (default); reviewer: review inbox and campaign pages only")
    sub.add_parser("list", help="every key: id, name, role, created, revoked")
    rev = sub.add_parser("revoke", help="refuse a key from now on")
    rev.add_argument("name")
    group.set_defaults(func=_run)
