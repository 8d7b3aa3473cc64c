"""`outbound forecast NAME`: before launching, who the campaign will reach, how many messages, how long it takes, what it costs.

The audience is selected as launch would select it (the lead list imported into a scratch database,
the campaign's segment applied), without touching the live one beyond reading the history of
earlier campaigns (`engine.forecast`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.domain.audience import lead_list_name
from outbound_pipeline.domain.lead_list import import_lead_list
from outbound_pipeline.domain.limits import OrgLimits
from outbound_pipeline.domain.loader import get_campaign
from outbound_pipeline.engine.forecast import Forecast, forecast
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import contacts, segments, warehouse
from outbound_pipeline.store.metrics import history_for_forecast


def campaign_forecast(name: str) -> Forecast:
    spec = get_campaign(name, settings.campaigns_dir())
    if spec.is_voice:
        raise ValueError(f"campaign {name!r} is a voice campaign: the forecast covers messages; run `outbound demo --campaign {name}` "
                         "for a simulated run of its calls")
    now = pipeline_now()
    if not spec.audience.lead_list:
        raise ValueError(f"campaign {name!r} draws on lists only; the forecast needs its lead_list file")
    path = Path(spec.audience.lead_list)
    path = path if path.is_absolute() else settings.leads_dir() / path
    result = import_lead_list(path, spec.audience.default_region, imported_at=now)
    list_name = lead_list_name(spec.audience.lead_list)
    with tempfile.TemporaryDirectory(prefix="outbound-forecast-") as scratch, warehouse.connect(Path(scratch) / "forecast.duckdb") as con:
        contacts.import_into_list(con, list_name, result, now)
        audience = segments.select_segment(con, [list_name], spec.audience.effective_segment, now)
    live = settings.duckdb_path()
    continuation: float | None = None
    costs: dict[str, float] = {}
    if os.path.exists(live):
        with warehouse.connect(live, read_only=True) as con:
            continuation, costs = history_for_forecast(con, exclude=name)
    if not any(ch in costs for ch in ("email", "whatsapp", "sms")):
        from outbound_pipeline.providers.channel_offline import COST_USD

        costs = {**COST_USD, **costs}
    found = forecast(spec, audience, now, OrgLimits.from_env(), continuation, costs)
    others = [n for n in spec.audience.lists if n != list_name]
    if others:
        found.assumptions.append(f"list(s) {', '.join(others)} are not counted: only the lead_list file is read")
    return found


def format_forecast(found: Forecast) -> str:
    lines = [f"Forecast for {found.campaign_id}",
             f"  audience: {found.audience} leads; first step reaches " + ", ".join(f"{n} by {ch}" for ch, n in found.reached_by_channel.items())
             + (f"; {found.unreachable} have no address on its channels" if found.unreachable else ""),
             f"  messages: about {found.messages:.0f}",
             f"  days to finish: {found.days_to_finish:.1f} (by {found.finish_by:%Y-%m-%d %H:%M} UTC if launched now)",
             f"  cost: ${found.cost_usd:,.2f} (" + ", ".join(f"{k} ${v:,.2f}" for k, v in found.cost_breakdown.items()) + ")", ""]
    lines.append(found.steps.to_string(index=False) if not found.steps.empty else "no step reaches anyone")
    lines += [f"note: {a}" for a in found.assumptions]
    return "\n".join(lines)


def _forecast(args: argparse.Namespace) -> int:
    with pd.option_context("display.width", 160):
        print(format_forecast(campaign_forecast(args.name)))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("forecast", help="before launch: leads reached per channel, messages, days to finish, cost")
    parser.add_argument("name", metavar="NAME", help="the campaign file's name (data/campaigns/NAME.yaml)")
    parser.set_defaults(func=_forecast)
