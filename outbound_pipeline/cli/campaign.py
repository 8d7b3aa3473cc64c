"""`outbound campaign ...`: create, launch (now or --at a time), pause, resume, stop, duplicate, status, test-send.

Each command is a function taking explicit paths, instance and time (so tests call them directly)
and an argparse wrapper. Status changes go through the lifecycle state machine and are audited.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.defs.launches import cancel_launches, parse_launch_time, schedule_launch
from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.domain.lead_list import normalise_email, normalise_phone
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED, current_status, record_event, transition
from outbound_pipeline.domain.loader import get_campaign, load_campaign_file
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.ids import stable_id
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.warehouse import insert_new


def _now() -> datetime:
    from outbound_pipeline.defs.resources import PipelineClock

    return PipelineClock(now_iso=os.environ.get("OUTBOUND_NOW") or None).now()


def _add_partition(instance: dg.DagsterInstance, campaign_id: str) -> None:
    if not instance.has_dynamic_partition(campaign_partitions.name, campaign_id):
        instance.add_dynamic_partitions(campaign_partitions.name, [campaign_id])


def campaign_row(spec: CampaignSpec, status: str, now: datetime) -> pd.DataFrame:
    spec_json = spec.model_dump_json()
    return pd.DataFrame([{
        "campaign_id": spec.name, "goal": spec.goal, "type": spec.type, "approval_mode": spec.approval,
        "lead_list": spec.audience.lead_list, "n_touches": spec.n_touches, "spec": spec_json,
        "spec_hash": hashlib.sha256(spec_json.encode()).hexdigest()[:16], "status": status, "status_reason": None,
        "launched_at": now, "updated_at": now,
    }])


def create(name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, campaigns_dir: str | None = None) -> str:
    """Validate the campaign's YAML and record it as a draft."""
    spec = get_campaign(name, campaigns_dir)
    with warehouse.connect(db_path) as con:
        status = current_status(con, name)
        if status is not None:
            raise ValueError(f"campaign {name!r} already exists ({status}); use duplicate to start a copy")
        insert_new(con, "campaigns", campaign_row(spec, "draft", now))
        record_event(con, name, None, "draft", "created", "cli", now)
    _add_partition(instance, name)
    return f"created {name} ({spec.type}, {spec.n_touches} steps) as draft"


def launch(name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, at: str | None = None,
           campaigns_dir: str | None = None) -> str:
    """Launch now (run the launch job in-process: spec frozen, leads imported, audience frozen, research) or at a time."""
    with warehouse.connect(db_path) as con:
        status = current_status(con, name)
    if status is None:
        create(name, db_path, instance, now, campaigns_dir)
        status = "draft"
    if at:
        when = parse_launch_time(at)
        if when <= now:
            raise ValueError(f"--at {at} is not in the future (now is {now:%Y-%m-%d %H:%M} UTC): launch without --at to start now")
        with warehouse.connect(db_path) as con:
            transition(con, name, "scheduled", f"launch at {when:%Y-%m-%d %H:%M} UTC", "cli", now, scheduled_for=when)
        schedule_launch(instance, name, when)
        return f"scheduled {name} to launch at {when:%Y-%m-%d %H:%M:%S} UTC"
    if status not in NOT_LAUNCHED:
        raise ValueError(f"campaign {name!r} is {status}: only a draft or scheduled campaign can be launched")
    from outbound_pipeline.runner import LAUNCH, Driver

    cancel_launches(instance, name)
    driver = Driver(instance, db_path)
    result = driver.run(LAUNCH, now, name)
    if not result.success:
        raise ValueError(f"launch of {name!r} failed; see the run in the Dagster UI")
    with warehouse.connect(db_path) as con:
        n = con.execute("SELECT count(*) FROM recipients WHERE campaign_id = ?", [name]).fetchall()[0][0]
    return f"launched {name}: {n} recipients frozen"


def set_status(name: str, target: str, db_path: str, instance: dg.DagsterInstance, now: datetime, reason: str | None = None) -> str:
    """pause | resume | stop, through the state machine."""
    with warehouse.connect(db_path) as con:
        before = transition(con, name, target, reason or {"paused": "paused", "running": "resumed", "stopped": "stopped"}.get(target, target) + " from the command line", "cli", now)
    if target == "stopped":
        cancel_launches(instance, name)
    return f"{name}: {before} -> {target}"


def duplicate(source: str, new_name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, campaigns_dir: str | None = None) -> str:
    """Copy a campaign's YAML under a new name (comments kept) and create it as a draft."""
    directory = Path(campaigns_dir or settings.campaigns_dir())
    get_campaign(source, directory)
    src = next(p for p in (directory / f"{source}.yaml", directory / f"{source}.yml") if p.exists())
    target = directory / f"{new_name}.yaml"
    if target.exists():
        raise ValueError(f"{target} already exists")
    text, count = re.subn(r"(?m)^name:\s*\S+", f"name: {new_name}", src.read_text(encoding="utf-8"), count=1)
    if not count:
        raise ValueError(f"{src}: no top-level `name:` line to rename")
    target.write_text(text, encoding="utf-8")
    try:
        load_campaign_file(target)
    except ValueError:
        target.unlink()
        raise
    create(new_name, db_path, instance, now, str(directory))
    return f"duplicated {source} as {new_name} ({target}), draft"


def status_report(db_path: str, name: str | None = None) -> str:
    """Campaigns with status, recipients by state, sends by status; events of one campaign."""
    where, params = ("WHERE c.campaign_id = ?", [name]) if name else ("", [])
    with warehouse.connect(db_path) as con:
        overview = con.execute(f"""
            SELECT c.campaign_id, c.type, c.status, c.status_reason,
                   (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.campaign_id) AS recipients,
                   (SELECT count(*) FROM recipients r WHERE r.campaign_id = c.campaign_id AND r.status = 'active') AS active,
                   (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status = 'sent') AS sent,
                   (SELECT count(*) FROM sends s WHERE s.campaign_id = c.campaign_id AND s.status IN ('pending', 'sending')) AS queued
            FROM campaigns c {where} ORDER BY c.campaign_id
        """, params).df()
        events = con.execute("""SELECT occurred_at, from_status, to_status, reason, actor FROM campaign_events
                                WHERE campaign_id = ? ORDER BY occurred_at, seq""", [name]).df() if name else None
    if overview.empty:
        return f"no campaign {name!r}" if name else "no campaigns yet: `outbound campaign create <name>`"
    text = overview.to_string(index=False)
    if events is not None and not events.empty:
        text += "\n\n" + events.to_string(index=False)
    return text


def test_send(name: str, to: str, db_path: str, now: datetime, step: str | None = None, channel: str | None = None,
              lead_id: str | None = None, campaigns_dir: str | None = None) -> str:
    """Compose one step for a lead (or a stand-in) and send it to `to`; recorded in `test_sends`, never in campaign metrics."""
    from outbound_pipeline.defs.resources import CampaignCatalog, default_resources
    from outbound_pipeline.domain.briefs import step_briefs
    from outbound_pipeline.providers.base import ComposeRequest, LeadProfile, OutboundMessage
    from outbound_pipeline.store.contacts import lead_profiles

    spec = get_campaign(name, campaigns_dir)
    names = spec.step_names
    step_name = step or names[0]
    if step_name not in names:
        raise ValueError(f"campaign {name!r} has no step {step_name!r} (steps: {', '.join(names)})")
    touch = names.index(step_name) + 1
    channel = channel or ("email" if "@" in to else "sms")
    address = normalise_email(to) if channel == "email" else normalise_phone(to, spec.audience.default_region)
    with warehouse.connect(db_path) as con:
        query = "SELECT * FROM leads WHERE lead_id = ?" if lead_id else \
            "SELECT l.* FROM recipients r JOIN leads l USING (lead_id) WHERE r.campaign_id = ? ORDER BY l.lead_id LIMIT 1"
        found = con.execute(query, [lead_id or name]).df()
    if lead_id and found.empty:
        raise ValueError(f"no lead {lead_id!r}")
    lead = lead_profiles(found)[0] if not found.empty else LeadProfile(lead_id="test", first_name="Alex", last_name="Test",
                                                                         company="Example Logistics", role="Head of Operations")
    brief = step_briefs(spec.step(touch), touch)[None]
    brief = type(brief)(touch=touch, intent=brief.intent, channels=(channel,), tone=brief.tone, cta=brief.cta)
    resources = default_resources()
    catalog: CampaignCatalog = resources["catalog"]
    with dg.build_resources({k: resources[k] for k in ("research", "composer", "channels")}) as res:
        snippets = res.research.provider.research(lead, spec.goal).snippets
        draft = res.composer.provider.compose(ComposeRequest(
            campaign_id=name, goal=spec.goal, voice=catalog.voice().text, lead=lead, step=brief, snippets=snippets,
            available_channels=(channel,)))
        test_id = stable_id("tst", name, step_name, address, now.isoformat())
        message = OutboundMessage(send_id=test_id, idempotency_key=test_id, campaign_id=name, touch=touch, lead_id=lead.lead_id,
                                  channel=channel, to=address, body=draft.body, subject=draft.subject, reply_to=spec.owner_email,
                                  sent_at=now)
        provider = res.channels.for_channel(channel)
        result = provider.send(message)
    with warehouse.connect(db_path) as con:
        insert_new(con, "test_sends", pd.DataFrame([{
            "test_send_id": test_id, "campaign_id": name, "step": step_name, "channel": channel, "to_address": address,
            "subject": draft.subject, "body": draft.body, "status": "sent" if result.status == "sent" else "failed",
            "provider": provider.name, "provider_message_id": result.provider_message_id, "error_message": result.error_message,
            "sent_at": now,
        }]))
    return f"test send {test_id}: {result.status} via {provider.name} {channel} to {address}\n\n{draft.subject or ''}\n{draft.body}"


# ---------------------------------------------------------------------------------------------- argparse


def _instance() -> dg.DagsterInstance:
    from outbound_pipeline.cli.main import ensure_dagster_home

    ensure_dagster_home()
    return dg.DagsterInstance.get()


def _run(args: argparse.Namespace) -> int:
    db, now = str(settings.duckdb_path()), _now()
    action = args.action
    if action == "status":
        print(status_report(db, args.name))
    elif action == "test-send":
        print(test_send(args.name, args.to, db, now, step=args.step, channel=args.channel, lead_id=args.lead))
    else:
        instance = _instance()
        if action == "create":
            print(create(args.name, db, instance, now))
        elif action == "launch":
            print(launch(args.name, db, instance, now, at=args.at))
        elif action in ("pause", "resume", "stop"):
            target = {"pause": "paused", "resume": "running", "stop": "stopped"}[action]
            print(set_status(args.name, target, db, instance, now, args.reason))
        elif action == "duplicate":
            print(duplicate(args.name, args.new_name, db, instance, now))
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    campaign = subparsers.add_parser("campaign", help="create, launch, pause, resume, stop, duplicate, inspect and test a campaign")
    actions = campaign.add_subparsers(dest="action", required=True)
    for action, text in (("create", "validate data/campaigns/<name>.yaml and record it as a draft"),
                         ("pause", "stop new sends; messages already handed over are kept"),
                         ("resume", "continue a paused campaign where it stopped"),
                         ("stop", "end the campaign for good; queued messages are suppressed")):
        p = actions.add_parser(action, help=text)
        p.add_argument("name")
        if action in ("pause", "resume", "stop"):
            p.add_argument("--reason")
    p = actions.add_parser("launch", help="freeze the audience and start now, or schedule with --at")
    p.add_argument("name")
    p.add_argument("--at", help="ISO time with zone offset, e.g. 2026-01-05T09:00:00+01:00")
    p = actions.add_parser("duplicate", help="copy a campaign under a new name, as a draft")
    p.add_argument("name")
    p.add_argument("new_name")
    p = actions.add_parser("status", help="status, audience and sends of every campaign (or one, with its history)")
    p.add_argument("name", nargs="?")
    p = actions.add_parser("test-send", help="send one rendered step to an address or number (kept out of campaign metrics)")
    p.add_argument("name")
    p.add_argument("--to", required=True, help="email address or phone number")
    p.add_argument("--step", help="step name (default: the first)")
    p.add_argument("--channel", choices=["email", "whatsapp", "sms"], help="default: email for an address, sms for a number")
    p.add_argument("--lead", help="render for this lead_id (default: the campaign's first recipient, or a stand-in)")
    campaign.set_defaults(func=_run)

