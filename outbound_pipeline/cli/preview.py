"""`outbound campaign preview`: each lead's message as a step would send it, read-only.

Reads the campaign file and the leads (from DuckDB when the list was imported, else straight from
the list file) and writes nothing: no database row, no draft, no provider call. A template step is
rendered exactly as the compose stage renders it; a composed step is described (it is written per
lead at send time: `outbound campaign test-send` shows one).
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.cli.voice_preview import voice_preview
from outbound_pipeline.domain.lead_list import import_lead_list
from outbound_pipeline.domain.loader import get_campaign
from outbound_pipeline.domain.segments import fields_hold
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.templates import PLACEHOLDER, text_value, whatsapp_window_open
from outbound_pipeline.engine.compose import organisation_name, render_for_lead
from outbound_pipeline.providers.sms_segments import sms_cost
from outbound_pipeline.runner import pipeline_now
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.reachability import audience_leads, last_inbound, opted_out_channels

DEFAULT_LIMIT = 5


def _list_file(spec: CampaignSpec, leads_dir: Path) -> Path | None:
    name = spec.audience.lead_list
    if not name:
        return None
    return Path(name) if os.path.isabs(name) else leads_dir / name


def campaign_leads(spec: CampaignSpec, db_path: str | None, leads_dir: Path,
                   now: datetime) -> tuple[pd.DataFrame, dict[str, datetime], dict[str, set[str]], str]:
    """(leads, lead id -> last inbound WhatsApp message, lead id -> channels opted out of, where the leads came from),
    without writing anything.

    The leads are those launch would freeze: the campaign's lists filtered by its segment (and filter). Read from
    the list file (not imported yet), only field conditions can be applied: engagement needs the history in DuckDB.
    """
    path = _list_file(spec, leads_dir)
    segment = spec.audience.effective_segment
    if db_path and Path(db_path).exists():
        with warehouse.connect(db_path, read_only=True) as con:
            found = audience_leads(con, spec.name, spec.audience.list_names, segment, now)
            inbound = last_inbound(con, found["lead_id"].tolist()) if not found.empty else {}
            opted = opted_out_channels(con, found["lead_id"].tolist()) if not found.empty else {}
        if not found.empty:
            return found, inbound, opted, f"DuckDB ({db_path})"
    if path is None:
        raise ValueError(f"campaign {spec.name!r}: no leads imported for its lists yet (or none its segment selects) "
                         "and no lead_list file to read")
    leads = import_lead_list(path, spec.audience.default_region).leads
    source = f"the list file {path} (not imported yet)"
    if segment.conditions and not leads.empty:
        records: list[dict[str, object]] = leads.to_dict("records")  # type: ignore[assignment]
        keep = [fields_hold(segment, lead, json.loads(text_value(lead.get("custom_vars")) or "{}")) for lead in records]
        leads = leads[keep]
        if segment.engagement_conditions:
            source += "; engagement conditions need the contact history and are applied at launch"
    return leads, {}, {}, source


def _mark_missing(text: str, missing: tuple[str, ...]) -> str:
    """The text with each unfilled placeholder framed, so a gap cannot be overlooked in a terminal."""
    if not missing:
        return text
    return PLACEHOLDER.sub(lambda m: f">>{m.group(0)}<<", text)


def _who(lead: dict) -> str:
    name = " ".join(str(lead[k]) for k in ("first_name", "last_name") if isinstance(lead.get(k), str) and lead[k])
    return f"{name} [{lead['lead_id']}]"


def preview(name: str, step: str | None = None, lead_id: str | None = None, limit: int = DEFAULT_LIMIT,
            db_path: str | None = None, campaigns_dir: str | Path | None = None, leads_dir: str | Path | None = None,
            now: datetime | None = None) -> str:
    """The rendered message of `step` (default: the first) for each lead (or one lead), with SMS segments and cost,
    WhatsApp free text or template by the 24-hour window, and missing variables marked."""
    spec = get_campaign(name, Path(campaigns_dir or settings.campaigns_dir()))
    names = spec.step_names
    step_name = step or names[0]
    if step_name not in names:
        raise ValueError(f"campaign {name!r} has no step {step_name!r} (steps: {', '.join(names)})")
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    touch = names.index(step_name) + 1
    the_step = spec.step(touch)
    now = now or pipeline_now()
    leads, inbound, opted, source = campaign_leads(spec, db_path, Path(leads_dir or settings.leads_dir()), now)
    if lead_id:
        leads = leads[leads["lead_id"] == lead_id]
        if leads.empty:
            raise ValueError(f"no lead {lead_id!r} among the leads of {name!r} (read from {source})")
    shown: list[dict] = leads.head(limit if not lead_id else 1).to_dict("records")
    if the_step.is_voice:
        return voice_preview(spec, shown, len(leads), source)
    how = "rendered from its template" if the_step.is_template else f"composed per lead (intent: {the_step.intent})"
    lines = [f"{spec.name} · step {step_name} ({touch} of {spec.n_touches}) · {how} · channels: {', '.join(the_step.channels)}",
             f"{len(shown)} of {len(leads)} leads, from {source}; nothing is written."]
    if not the_step.is_template:
        lines.append("A composed step is written per lead from its research when the touch runs; "
                     "`outbound campaign test-send` composes and sends one to you.")
        return "\n".join(lines)
    organisation = organisation_name(spec)
    totals = {"segments": 0, "cost": 0.0, "missing": 0, "unreachable": 0}
    for lead in shown:
        outcome = render_for_lead(lead, spec, touch, None, organisation, inbound.get(str(lead["lead_id"])), now,
                                  opted.get(str(lead["lead_id"]), ()))
        lines += ["", "-" * 78]
        if outcome.message is None:
            totals["unreachable"] += 1
            lines.append(f"{_who(lead)} · FAILED: {outcome.unreachable} (the step is limited to {', '.join(the_step.channels)})")
            continue
        m = outcome.message
        to = lead.get("email") if m.channel == "email" else lead.get("phone")
        detail = ""
        if m.channel == "sms":
            encoding, segments, cost = sms_cost(m.body)
            totals["segments"] += segments
            totals["cost"] += cost
            detail = f" · {segments} segment{'s' if segments != 1 else ''} ({encoding}, {len(m.body)} characters) · ${cost:.4f}"
        elif m.channel == "whatsapp":
            window = whatsapp_window_open(inbound.get(str(lead["lead_id"])), now)
            content = the_step.template_for(None)
            if window:
                detail = " · free text (inside the 24-hour window)"
            elif m.kind == "whatsapp_template":
                detail = f" · approved template {content.content_sid if content else ''} (outside the 24-hour window)"
            else:
                detail = (" · outside the 24-hour window: WhatsApp sends the approved template "
                          + (f"{content.content_sid} (no `body:` in the campaign file to show)" if content else
                             "but this step has none, so the send will fail"))
        lines.append(f"{_who(lead)} · {m.channel} to {to}{detail}")
        if m.subject:
            lines.append(f"subject: {_mark_missing(m.subject, m.missing)}")
        if m.media_url:
            lines.append(f"    [media: {m.media_url}]")
        lines += [f"    {line}" for line in _mark_missing(m.body, m.missing).splitlines()]
        if m.buttons:
            lines.append("    " + " ".join(f"[ {title} ]" for title in m.buttons) + "  (quick replies)")
        if m.missing:
            totals["missing"] += 1
            held = "sent as shown (send_with_missing)" if spec.send_with_missing else (
                "held for a person in the review queue" if spec.approval == "auto" else "flagged for the reviewer")
            lines.append(f"missing: {', '.join('{{' + n + '}}' for n in m.missing)} -> {held}")
    lines += ["", "-" * 78,
              f"{len(shown)} previewed: {totals['missing']} with missing variables, {totals['unreachable']} unreachable"
              + (f", {totals['segments']} SMS segments, ${totals['cost']:.4f}" if totals["segments"] else "")]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    print(preview(args.name, step=args.step, lead_id=args.lead, limit=args.limit, db_path=settings.duckdb_path()))
    return 0


def add_preview_command(actions: argparse._SubParsersAction) -> None:
    """`outbound campaign preview NAME [--step S] [--lead ID | --limit N]`."""
    p = actions.add_parser("preview", help="print each lead's rendered message for a step (segments, cost, missing variables); writes nothing")
    p.add_argument("name")
    p.add_argument("--step", help="step name (default: the first)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--lead", help="only this lead_id")
    which.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"how many leads (default {DEFAULT_LIMIT})")
    p.set_defaults(func=_run)
