"""The REST API's campaign fields (seed 004's names) and how they become a campaign file.

A campaign created over HTTP is an ordinary campaign: its fields are written as `data/campaigns/<id>.yaml` (so the
Dagster UI, the schedules and `outbound campaign ...` see it like any other) and recorded as a draft; its contacts are
the list named after it. Fields that are not part of a campaign file (display name, agent id, number ids, `live`)
are kept in `api_campaigns`. A campaign whose fields do not make a valid file yet stays a draft with its problems
listed, and cannot be launched until they are fixed.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from outbound_pipeline.defs.launches import parse_launch_time
from outbound_pipeline.domain.loader import parse_campaign
from outbound_pipeline.domain.spec import CampaignSpec

ApiChannel = Literal["voice", "sms", "whatsapp", "email"]
MAX_CSV_BYTES = 5 * 1024 * 1024
TEMPLATE_CSV = ("phone_number,name,email,company,deal_stage,notes\n"
                "+15551234567,John Doe,john@example.com,Acme Corp,proposal,VIP customer\n"
                "5559876543,Jane Smith,jane@example.com,Beta Inc,discovery,Follow up on quote\n"
                "(555) 555-0100,Bob Wilson,,Gamma LLC,lead,New lead from website\n")
DEFAULT_OPENING = "Hi {{name}}, this is {{company.name}}. Do you have a minute to talk?"
DEFAULT_VOICEMAIL = "Hi {{name}}, this is {{company.name}}. Sorry we missed you; we will call again."


def _offset_time(value: str | None) -> str | None:
    """A `scheduled_at` must carry its zone offset: a bare local time is ambiguous."""
    if value is None:
        return None
    try:
        parse_launch_time(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace("--at", "scheduled_at")) from None
    return value


class CampaignFields(BaseModel):
    """Every settable field; on create `name` is required, on PATCH any subset is given."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, description="Human-readable campaign name.")
    channel: ApiChannel | None = Field(default=None, description="voice (default), sms, whatsapp or email.")
    agent_id: str | None = Field(default=None, description="Voice: the agent that holds the calls.")
    phone_number_id: int | str | None = Field(default=None, description="Caller ID / sender number. Required before launching "
                                                                         "a voice, SMS or WhatsApp campaign unless the server has a sender configured.")
    max_concurrent: int | None = Field(default=None, ge=1, le=1000, description="Voice: simultaneous calls (default 1).")
    retry_attempts: int | None = Field(default=None, ge=0, le=10, description="Retries of a failed contact (default 0).")
    retry_delay_minutes: int | None = Field(default=None, ge=1, le=10080, description="Minutes between retries (default 60).")
    scheduled_at: str | None = Field(default=None, description="ISO 8601 time with zone offset: launch waits until then.")
    number_pool: list[str] | None = Field(default=None, description="Caller IDs rotated round robin.")
    sms_template: str | None = Field(default=None, min_length=1, max_length=1600, description="SMS text with {{variables}}.")
    template: str | None = Field(default=None, min_length=1, max_length=4096, description="Message text with {{variables}} "
                                                                                          "(WhatsApp, email; SMS may use sms_template).")
    subject: str | None = Field(default=None, min_length=1, max_length=300, description="Email subject with {{variables}}.")
    opening_line: str | None = Field(default=None, min_length=1, description="Voice: the agent's first words ({{variables}}).")
    voicemail_message: str | None = Field(default=None, min_length=1, description="Voice: what is left on a voicemail.")
    steps: list[dict[str, Any]] | None = Field(default=None, description="Campaign-file steps, for multi-step campaigns "
                                                                         "(see the README's Campaigns section).")
    goal: str | None = Field(default=None, min_length=10, description="What the campaign is for (composed steps use it).")
    approval: Literal["manual", "batch", "auto"] | None = Field(default=None, description="Review of drafts (default: auto for "
                                                                                          "template and voice campaigns, else manual).")
    default_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$", description="Country of phone numbers without +code.")
    sending_window: dict[str, Any] | None = Field(default=None, description="{start, end, days, default_timezone}.")
    live: bool | None = Field(default=None, description="Real sends: launch requires the channel's credentials.")

    _scheduled = field_validator("scheduled_at")(classmethod(lambda cls, v: _offset_time(v)))


class LaunchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_at: str | None = Field(default=None, description="ISO 8601 time with zone offset, e.g. 2026-03-01T09:00:00-05:00.")
    max_concurrent: int | None = Field(default=None, ge=1, le=1000)

    _scheduled = field_validator("scheduled_at")(classmethod(lambda cls, v: _offset_time(v)))


class DuplicateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, description="Name of the copy (default: '<name> copy').")


def campaign_id_for(name: str, taken: set[str]) -> str:
    """A campaign id from a display name: lower-case letters, digits and '-', unique among `taken`."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50] or "campaign"
    if not base[0].isalnum():
        base = f"c{base}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _agent_name(agent_id: str) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", agent_id.lower()).strip("-")[:63]
    return name if name and name[0].isalnum() else f"agent-{name}".strip("-")


def spec_document(campaign_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The campaign file for these fields (not validated here)."""
    channel = fields.get("channel") or "voice"
    name = fields.get("name") or campaign_id
    doc: dict[str, Any] = {
        "name": campaign_id,
        "goal": fields.get("goal") or f"{name}: a {channel} campaign run through the API",
        "audience": {"lists": [campaign_id], "default_region": fields.get("default_region") or "US"},
    }
    if fields.get("sending_window"):
        doc["sending_window"] = fields["sending_window"]
    retries = {"retry_attempts": fields.get("retry_attempts") or 0, "retry_delay": f"{fields.get('retry_delay_minutes') or 60}m"}
    if fields.get("steps"):
        doc.update(type="drip" if len(fields["steps"]) > 1 else "oneshot", approval=fields.get("approval") or "manual",
                   steps=fields["steps"], **retries)
    elif channel == "voice":
        agent = fields.get("agent_id")
        pool = [str(n) for n in fields.get("number_pool") or []]
        phone = fields.get("phone_number_id")
        doc.update(type="oneshot", approval=fields.get("approval") or "auto", steps=[{
            "name": "call", "channels": ["voice"],
            **({"agent": {"name": _agent_name(str(agent)), "opening_line": fields.get("opening_line") or DEFAULT_OPENING,
                          "voicemail_message": fields.get("voicemail_message") or DEFAULT_VOICEMAIL}} if agent else {}),
        }], voice={
            "max_concurrent": fields.get("max_concurrent") or 1, "retry_attempts": fields.get("retry_attempts") or 0,
            "retry_delay_minutes": fields.get("retry_delay_minutes") or 60, "number_pool": pool,
            **({"phone_number": str(phone)} if phone is not None else {}),
            **({"scheduled_at": fields["scheduled_at"]} if fields.get("scheduled_at") else {}),
        })
    else:
        text = fields.get("sms_template") if channel == "sms" and fields.get("sms_template") else fields.get("template")
        step: dict[str, Any] = {"name": channel, "channels": [channel]}
        if text:
            step["template"] = text
        else:
            step["intent"] = "introduce"
        if channel == "email" and text:
            step["subject"] = fields.get("subject") or "{{company.name}}: " + name
        doc.update(type="oneshot", approval=fields.get("approval") or ("auto" if text else "manual"), steps=[step], **retries)
    return doc


def spec_yaml(doc: dict[str, Any]) -> str:
    return "# Written by the REST API (POST/PATCH /api/campaigns); edit through the API while it is a draft.\n" + yaml.safe_dump(
        doc, sort_keys=False, allow_unicode=True)


def build_spec(campaign_id: str, fields: dict[str, Any]) -> tuple[str, CampaignSpec | None, list[str]]:
    """(file text, spec or None, problems): the problems are what keeps the campaign from being launched."""
    problems: list[str] = []
    channel = fields.get("channel") or "voice"
    if channel == "voice" and not fields.get("agent_id") and not fields.get("steps"):
        problems.append("a voice campaign needs agent_id")
    if channel != "voice" and not fields.get("steps") and not (fields.get("sms_template") or fields.get("template")):
        problems.append("sms_template is required for an SMS campaign" if channel == "sms" else
                        f"a {channel} campaign needs a template (or steps)")
    text = spec_yaml(spec_document(campaign_id, fields))
    spec = None
    try:
        spec = parse_campaign(text, f"campaign {campaign_id}")
    except ValueError as exc:
        problems.append(str(exc).replace(f"campaign {campaign_id}: ", ""))
    return text, (spec if not problems else None), problems


# --------------------------------------------------------------------------------------------- launch checks

_TWILIO_CREDENTIALS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
_SENDER_ENV = {"sms": ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_SMS_FROM_NUMBERS"),
               "whatsapp": ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_WHATSAPP_FROM"),
               "voice": ("TWILIO_VOICE_FROM_NUMBERS",)}


def launch_problems(fields: dict[str, Any], problems: list[str], contacts: int, scheduled_at: str | None,
                    env: dict[str, str] | None = None) -> list[str]:
    """Everything that keeps the campaign from launching, in plain words (empty: it may launch)."""
    env = dict(os.environ) if env is None else env
    channel = fields.get("channel") or "voice"
    found = list(problems)
    if contacts == 0:
        found.append("no contacts: upload a CSV first (POST /api/campaigns/{id}/upload-csv)")
    has_number = fields.get("phone_number_id") is not None or bool(fields.get("number_pool"))
    if channel in _SENDER_ENV and not has_number and not any(env.get(v) for v in _SENDER_ENV[channel]):
        found.append(f"no sender for {channel}: set phone_number_id or number_pool "
                     f"(or configure {' or '.join(_SENDER_ENV[channel])} on the server)")
    if fields.get("live"):
        needed = ("RESEND_API_KEY", "OUTBOUND_EMAIL_FROM") if channel == "email" else _TWILIO_CREDENTIALS
        missing = [v for v in needed if not env.get(v)]
        if missing:
            found.append(f"the campaign is live but the server lacks {channel} credentials: {', '.join(missing)}")
    if scheduled_at:
        try:
            parse_launch_time(scheduled_at)
        except ValueError as exc:
            found.append(str(exc).replace("--at", "scheduled_at"))
    return found


def scheduled_utc(value: str) -> datetime:
    return parse_launch_time(value)
