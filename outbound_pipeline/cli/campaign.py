"""`outbound campaign ...`: create, launch (now or --at a time), pause, resume, stop, duplicate, status, test-send.

Each command is a function taking explicit paths, instance and time (so tests call them directly)
and an argparse wrapper. Status changes go through the lifecycle state machine and are audited.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from datetime import datetime
from pathlib import Path
from typing import cast

import dagster as dg

from outbound_pipeline import settings
from outbound_pipeline.cli.preview import add_preview_command
from outbound_pipeline.defs.campaign_status import report_status
from outbound_pipeline.defs.launches import cancel_launches, parse_launch_time, schedule_launch
from outbound_pipeline.defs.partitions import add_campaign
from outbound_pipeline.defs.resources import CampaignCatalog, default_resources
from outbound_pipeline.domain.lead_list import normalise_email, normalise_phone
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED
from outbound_pipeline.domain.loader import get_campaign, load_campaign_file
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.engine.call_report import format_call_stats
from outbound_pipeline.engine.compose import step_briefs
from outbound_pipeline.engine.profiles import lead_profiles
from outbound_pipeline.engine.template_check import check_variables
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import ComposeRequest, LeadProfile, OutboundMessage
from outbound_pipeline.runner import LAUNCH, Driver, dagster_instance, pipeline_now
from outbound_pipeline.store import campaigns as campaign_store
from outbound_pipeline.store import contacts, warehouse
from outbound_pipeline.store.calls import call_stats

STAND_IN = LeadProfile(lead_id="test", first_name="Alex", last_name="Test", company="Example Logistics", role="Head of Operations")


def _campaigns_dir(campaigns_dir: str | Path | None) -> Path:
    return Path(campaigns_dir or settings.campaigns_dir())


def _lead_list_path(spec: CampaignSpec) -> Path | None:
    name = spec.audience.lead_list
    return (Path(name) if Path(name).is_absolute() else settings.leads_dir() / name) if name else None


def variable_warnings(db_path: str, spec: CampaignSpec) -> str:
    """Lines for `create`: template variables no contact of the campaign's lists can fill (launch refuses them)."""
    with warehouse.connect(db_path, read_only=True) as con:
        variables = check_variables(con, spec, _lead_list_path(spec))
    if variables.problems:
        return "\nwarning: template variables no contact can fill (launch is refused until they are fixed):\n  " + "\n  ".join(variables.problems)
    if not variables.checked and any(s.is_template or s.whatsapp_template for s in spec.steps):
        return "\nnote: none of the campaign's lists is imported yet: its template variables are checked at launch"
    return ""


def refuse_unfillable_variables(db_path: str, spec: CampaignSpec) -> None:
    """Refuse to launch a campaign whose templates use a variable no contact of its audience can fill, naming step and variable."""
    with warehouse.connect(db_path, read_only=True) as con:
        variables = check_variables(con, spec, _lead_list_path(spec))
    if variables.problems:
        raise ValueError(f"launch of {spec.name!r} refused, the campaign is unchanged: template variables no contact can fill:\n  "
                         + "\n  ".join(variables.problems) + "\nfix the campaign file or import the missing column into its lists")


def create(name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, campaigns_dir: str | None = None,
           actor: str = "cli") -> str:
    """Validate the campaign's YAML and record it as a draft."""
    spec = get_campaign(name, _campaigns_dir(campaigns_dir))
    with warehouse.connect(db_path) as con:
        campaign_store.create(con, spec, actor, now)
    add_campaign(instance, name)
    return f"created {name} ({spec.type}, {spec.n_touches} steps) as draft" + variable_warnings(db_path, spec)


_EXCEPTION_PREFIX = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Failure|Busy)\w*: ")


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    """Each failed step's own error in one line (no traceback, no exception class), e.g. a refused lead list or a busy database."""
    lines = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
            error = error.cause
        text = (error.message if error else "").strip().split("\n")[0]
        lines.append(f"{event.step_key}: {_EXCEPTION_PREFIX.sub('', text)}")
    return "; ".join(lines) or "see the run in the Dagster UI"


def launch(name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, at: str | None = None,
           campaigns_dir: str | None = None, actor: str = "cli", start: bool = True) -> str:
    """Launch now (run the launch job in-process: spec frozen, leads imported, audience frozen, research) or at a time.

    A launch that fails part way is undone: the campaign keeps the status, events and (empty) audience it had.
    With `start`, the first touch runs straight after (its drafts, and the sends of what is approved), instead of
    waiting for the next cadence tick.
    """
    with warehouse.connect(db_path) as con:
        status = campaign_store.current_status(con, name)
    if status is None:
        create(name, db_path, instance, now, campaigns_dir, actor)
        status = "draft"
    if at:
        when = parse_launch_time(at)
        if when <= now:
            raise ValueError(f"--at {at} is not in the future (now is {now:%Y-%m-%d %H:%M} UTC): launch without --at to start now")
        reason = f"launch at {when:%Y-%m-%d %H:%M} UTC"
        with warehouse.connect(db_path) as con:
            campaign_store.transition(con, name, "scheduled", reason, actor, now, scheduled_for=when)
        schedule_launch(instance, name, when)
        report_status(instance, name, "scheduled", reason)
        return f"scheduled {name} to launch at {when:%Y-%m-%d %H:%M:%S} UTC"
    if status not in NOT_LAUNCHED:
        raise ValueError(f"campaign {name!r} is {status}: only a draft or scheduled campaign can be launched")
    refuse_unfillable_variables(db_path, get_campaign(name, _campaigns_dir(campaigns_dir)))
    with warehouse.connect(db_path) as con:
        before = campaign_store.snapshot(con, name)
    driver = Driver(instance, db_path, simulated=False)
    result = driver.run(LAUNCH, now, name, tags={"outbound/trigger": f"launch by {actor}"}, raise_on_error=False)
    if not result.success:
        with warehouse.connect(db_path) as con:
            campaign_store.restore(con, before)
        report_status(instance, name, status, "launch failed and was undone")
        raise ValueError(f"launch of {name!r} failed and was undone ({name} is still {status}): {_failure_message(result)}")
    cancel_launches(instance, name)
    with warehouse.connect(db_path) as con:
        n = contacts.recipient_count(con, name)
    started = ""
    if start:
        try:
            due = driver.start(name, now, tags={"outbound/trigger": f"launch by {actor}"})
            started = f"; first touch run now ({', '.join(due)})" if due else "; nothing due yet"
        except Exception as exc:  # launched all the same: the cadence schedule runs the touch at its next tick
            started = f"; the first touch will run at the next cadence tick ({exc})"
    return f"launched {name}: {n} recipients frozen{started}"


def set_status(name: str, target: str, db_path: str, instance: dg.DagsterInstance, now: datetime, reason: str | None = None,
               actor: str = "cli") -> str:
    """pause | resume | stop, through the state machine; the move is also reported to the instance for the schedules and sensors."""
    reason = reason or {"paused": "paused", "running": "resumed", "stopped": "stopped"}.get(target, target) + (
        " from the command line" if actor == "cli" else f" by {actor}")
    with warehouse.connect(db_path) as con:
        before = campaign_store.transition(con, name, target, reason, actor, now)
    if target == "stopped":
        cancel_launches(instance, name)
    report_status(instance, name, target, reason)
    return f"{name}: {before} -> {target}"


def duplicate(source: str, new_name: str, db_path: str, instance: dg.DagsterInstance, now: datetime, campaigns_dir: str | None = None) -> str:
    """Copy a campaign's YAML under a new name (comments kept) and create it as a draft."""
    directory = _campaigns_dir(campaigns_dir)
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
    with warehouse.connect(db_path) as con:
        overview = campaign_store.status_overview(con, name)
        events = campaign_store.status_history(con, name) if name else None
        stats = call_stats(con, name) if name else None
    calls = stats if stats and stats["contacts"]["total"] else None
    if overview.empty:
        return f"no campaign {name!r}" if name else "no campaigns yet: `outbound campaign create <name>`"
    text = overview.to_string(index=False)
    if events is not None and not events.empty:
        text += "\n\n" + events.to_string(index=False)
    if calls is not None:  # a voice campaign: its contacts and calls
        text += "\n\n" + format_call_stats(calls)
    return text


def test_send(name: str, to: str, db_path: str, now: datetime, step: str | None = None, channel: str | None = None,
              lead_id: str | None = None, campaigns_dir: str | None = None) -> str:
    """Compose one step for a lead (or a stand-in) and send it to `to`; recorded in `test_sends`, never in campaign metrics."""
    spec = get_campaign(name, _campaigns_dir(campaigns_dir))
    names = spec.step_names
    step_name = step or names[0]
    if step_name not in names:
        raise ValueError(f"campaign {name!r} has no step {step_name!r} (steps: {', '.join(names)})")
    touch = names.index(step_name) + 1
    channel = channel or ("email" if "@" in to else "sms")
    address = normalise_email(to) if channel == "email" else normalise_phone(to, spec.audience.default_region)
    with warehouse.connect(db_path) as con:
        found = contacts.lead(con, lead_id) if lead_id else contacts.first_recipient(con, name)
    if lead_id and found.empty:
        raise ValueError(f"no lead {lead_id!r}")
    lead = lead_profiles(found)[0] if not found.empty else STAND_IN
    brief = dataclasses.replace(step_briefs(spec.step(touch), touch)[None], channels=(channel,))
    resources = default_resources()
    catalog = cast(CampaignCatalog, resources["catalog"])
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
        campaign_store.record_test_send(con, {
            "test_send_id": test_id, "campaign_id": name, "step": step_name, "channel": channel, "to_address": address,
            "subject": draft.subject, "body": draft.body, "status": "sent" if result.status == "sent" else "failed",
            "provider": provider.name, "provider_message_id": result.provider_message_id, "error_message": result.error_message,
            "sent_at": now,
        })
    return f"test send {test_id}: {result.status} via {provider.name} {channel} to {address}\n\n{draft.subject or ''}\n{draft.body}"


# ---------------------------------------------------------------------------------------------- argparse


def _run(args: argparse.Namespace) -> int:
    db, now = str(settings.duckdb_path()), pipeline_now()
    action = args.action
    if action == "status":
        print(status_report(db, args.name))
    elif action == "test-send":
        print(test_send(args.name, args.to, db, now, step=args.step, channel=args.channel, lead_id=args.lead))
    else:
        instance = dagster_instance()
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
    add_preview_command(actions)  # its own handler (set on the subparser, so it wins over the group's)

