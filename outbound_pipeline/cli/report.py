"""`outbound report CAMPAIGN`: one self-contained HTML file (charts, tables, A/B verdicts, cost) and a terminal summary.

The page is written from the same counts as the metrics tables (`store.metrics.rollup`, as of the
pipeline clock), so it is right even if no metrics run happened since the last message.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from outbound_pipeline import settings
from outbound_pipeline.engine.report import campaign_report, campaign_terminal_summary, load_campaign
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import known_campaign


def default_report_path(campaign_id: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in campaign_id).lstrip(".") or "campaign"
    return settings.DATA_DIR / "reports" / f"{safe}.html"


def write_report(campaign_id: str, out: Path | None = None) -> tuple[Path, str]:
    """Write the campaign's HTML report (atomically: a reader never sees half a page); returns (path, terminal summary)."""
    now = pipeline_now()
    with warehouse.connect(settings.duckdb_path(), read_only=True) as con:
        if not known_campaign(con, campaign_id):
            raise ValueError(f"no campaign {campaign_id!r} in {settings.duckdb_path()} (launch it first, or see `outbound campaign list`)")
        campaign = load_campaign(con, campaign_id, now)
    path = out or default_report_path(campaign_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    page = campaign_report(campaign, generated_at=f"{now:%Y-%m-%d %H:%M} UTC")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".report-", suffix=".html")
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(temporary, path)
    return path, campaign_terminal_summary(campaign)


def _report(args: argparse.Namespace) -> int:
    path, summary = write_report(args.campaign, Path(args.out) if args.out else None)
    print(summary)
    print(f"Report: {path}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="write a campaign's HTML report (charts, tables, A/B verdicts, cost) and print a summary")
    report.add_argument("campaign", metavar="CAMPAIGN")
    report.add_argument("--out", help="where to write the HTML file (default data/reports/CAMPAIGN.html)")
    report.set_defaults(func=_report)
