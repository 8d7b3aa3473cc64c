"""`outbound`: the command line of outbound_pipeline.

    outbound demo        run the offline demo campaign end to end and print its metrics
    outbound dev         start the Dagster UI (dagster dev) on this code location
    outbound metrics     print the metrics table from DuckDB
    outbound report C    write campaign C's HTML report and print its summary
    outbound forecast C  before launch: leads reached per channel, messages, days to finish, cost
    outbound webhooks    start the webhook receiver
    outbound serve       one server: webhooks, REST API, review inbox, live campaign pages
    outbound apikey      create, list and revoke keys for the API and the pages
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from outbound_pipeline import settings
from outbound_pipeline.cli import apikey, campaign, contacts, forecast, report, review, serve, tickets
from outbound_pipeline.demo import format_metrics, run_demo
from outbound_pipeline.runner import ensure_dagster_home
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_metrics


def _demo(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    instance = dg.DagsterInstance.ephemeral() if args.ephemeral else dg.DagsterInstance.get()
    print(f"Running campaign {args.campaign!r} offline on a simulated clock; DuckDB: {settings.duckdb_path()}", flush=True)
    result = run_demo(args.campaign, instance=instance, quiet=not args.verbose)
    print(result.report or format_metrics(result.metrics))
    print(f"\n{result.runs} Dagster runs over {result.ticks} simulated ticks in {result.seconds:.1f}s. "
          "Query the tables in DuckDB, or run `outbound dev` to browse the runs.")
    return 0


def _dev(args: argparse.Namespace) -> int:
    ensure_dagster_home()
    dagster = shutil.which("dagster") or str(Path(sys.executable).parent / "dagster")
    cmd = [dagster, "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml"), "-h", args.host, "-p", str(args.port)]
    return subprocess.call(cmd, cwd=settings.REPO_ROOT)


def _metrics(args: argparse.Namespace) -> int:
    with warehouse.connect(settings.duckdb_path()) as con:
        frame = campaign_metrics(con)
    print(format_metrics(frame) if not frame.empty else "No metrics yet: run `outbound demo` or materialise campaign_metrics.")
    return 0


def _webhooks(args: argparse.Namespace) -> int:
    from outbound_pipeline.http.server import serve

    serve(host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="outbound", description="Personalised multichannel outbound campaigns on Dagster and DuckDB.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the offline demo campaign end to end and print its metrics")
    demo.add_argument("--campaign", default="demo_drip")
    demo.add_argument("--ephemeral", action="store_true", help="do not record the runs in DAGSTER_HOME")
    demo.add_argument("--verbose", action="store_true", help="show Dagster's run logs")
    demo.set_defaults(func=_demo)

    dev = sub.add_parser("dev", help="start the Dagster UI on this code location")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=_dev)

    metrics = sub.add_parser("metrics", help="print the campaign_metrics table")
    metrics.set_defaults(func=_metrics)

    hooks = sub.add_parser("webhooks", help="start the webhook receiver (Twilio, Resend, one-click unsubscribe)")
    hooks.add_argument("--host", default="127.0.0.1")
    hooks.add_argument("--port", type=int, default=8787)
    hooks.set_defaults(func=_webhooks)

    for commands in (review, campaign, tickets, contacts, report, forecast, serve, apikey):
        commands.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"outbound: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
