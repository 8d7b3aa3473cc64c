"""`outbound serve`: one server for the webhooks, the REST API, the review inbox and the live campaign pages.

Binds to loopback by default: put a TLS reverse proxy (Caddy, nginx) in front and set OUTBOUND_PUBLIC_BASE_URL to the
public https address, so Twilio's signatures verify and the session cookie is marked Secure.
"""

from __future__ import annotations

import argparse


def _serve(args: argparse.Namespace) -> int:
    from outbound_pipeline.http.server import serve

    serve(host=args.host, port=args.port)
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="serve the webhooks, the REST API (/api, /docs), the review inbox and the campaign pages")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; use a TLS proxy in front)")
    p.add_argument("--port", type=int, default=8787)
    p.set_defaults(func=_serve)
