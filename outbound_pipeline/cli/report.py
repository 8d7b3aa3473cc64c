"""`outbound report CAMPAIGN`: one self-contained HTML file (charts, tables, A/B verdicts, cost) and a terminal summary.

The page is written from the same counts as the metrics tables (`store.metrics.rollup`, as of the
pipeline clock), so it is right even if no metrics run happened since the last message.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.engine.report import campaign_report, campaign_terminal_summary, load_campaign
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.metrics import known_campaign, lead_story


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


def lead_timeline(campaign_id: str, lead_id: str) -> str:
    """One lead's path through the campaign as text: research, drafts, review, sends, provider events, replies."""
    with warehouse.connect(settings.duckdb_path(), read_only=True) as con:
        story = lead_story(con, campaign_id, lead_id)
    if story.empty:
        raise ValueError(f"nothing happened to lead {lead_id!r} in campaign {campaign_id!r}")
    lines = [f"Lead {lead_id} in {campaign_id}"]
    for happened_at, stage, touch, detail in story[["happened_at", "stage", "touch", "detail"]].itertuples(index=False, name=None):
        step = "  " if pd.isna(touch) else f"t{int(touch)}"
        text = "".join(ch if ch.isprintable() else " " for ch in str(detail))
        lines.append(f"{pd.Timestamp(happened_at):%Y-%m-%d %H:%M}  {stage:<8} {step:<3} {text}")
    return "\n".join(lines)


def _report(args: argparse.Namespace) -> int:
    if args.lead:
        print(lead_timeline(args.campaign, args.lead))
        return 0
    path, summary = write_report(args.campaign, Path(args.out) if args.out else None)
    print(summary)
    print(f"Report: {path}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser("report", help="write a campaign's HTML report (charts, tables, A/B verdicts, cost) and print a summary")
    report.add_argument("campaign", metavar="CAMPAIGN")
    report.add_argument("--out", help="where to write the HTML file (default data/reports/CAMPAIGN.html)")
    report.add_argument("--lead", metavar="LEAD_ID", help="instead, print what happened to one lead, from research to replies")
    report.set_defaults(func=_report)
