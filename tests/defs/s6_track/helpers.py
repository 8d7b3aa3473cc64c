"""A small, hand-made campaign in DuckDB, and the way a landed batch is ingested in tests."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

from outbound_pipeline.defs.s6_track.sensors import landing_sensor
from outbound_pipeline.domain.loader import get_campaign
from outbound_pipeline.runner import TRACK
from outbound_pipeline.store.warehouse import insert_new
from tests.conftest import MONDAY_MORNING

TOKEN = "twilio-auth-token-for-tests"
SECRET = "whsec_" + base64.b64encode(b"resend-webhook-key-for-tests-32b").decode()
SENT_AT = MONDAY_MORNING
ANA = {"lead_id": "lead_ana", "first_name": "Ana", "last_name": "Ruiz", "email": "ana@example.com", "phone": "+34600000001"}
BEN = {"lead_id": "lead_ben", "first_name": "Ben", "last_name": "Ode", "email": "ben@example.com", "phone": "+34600000002"}
CLEO = {"lead_id": "lead_cleo", "first_name": "Cleo", "last_name": None, "email": "cleo@example.com", "phone": "+34600000003"}


def seed_campaign(con, workdir: Path, name: str = "demo_drip", **spec_changes) -> None:
    spec = get_campaign("demo_drip", workdir / "campaigns").model_copy(update={"name": name, **spec_changes})
    insert_new(con, "campaigns", pd.DataFrame([{
        "campaign_id": name, "goal": spec.goal, "type": spec.type, "approval_mode": spec.approval, "lead_list": "sample_leads.csv",
        "n_touches": spec.n_touches, "spec": spec.model_dump_json(), "spec_hash": "test", "status": "running", "status_reason": None,
        "launched_at": SENT_AT, "updated_at": SENT_AT,
    }]))


def seed_leads(con, campaign: str = "demo_drip", leads: tuple[dict, ...] = (ANA, BEN, CLEO)) -> None:
    frame = pd.DataFrame([{**lead, "source_list": "t.csv", "source_line": i + 2, "custom_vars": "{}", "status": "active",
                           "timezone": "Europe/Madrid", "country": "ES", "imported_at": SENT_AT} for i, lead in enumerate(leads)])
    insert_new(con, "leads", frame)
    insert_new(con, "recipients", pd.DataFrame({"campaign_id": campaign, "lead_id": frame["lead_id"], "status": "active",
                                                "added_at": SENT_AT, "updated_at": SENT_AT}))


def send_row(send_id: str, lead: dict, channel: str, *, campaign: str = "demo_drip", touch: int = 1, sent_at: datetime = SENT_AT,
             provider: str = "twilio", provider_message_id: str | None = None, message_id: str | None = None, status: str = "sent") -> dict:
    return {
        "send_id": send_id, "draft_id": send_id.replace("snd_", "drf_"), "campaign_id": campaign, "touch": touch, "lead_id": lead["lead_id"],
        "channel": channel, "to_address": lead["email"] if channel == "email" else lead["phone"],
        "subject": "Hello" if channel == "email" else None, "body": f"Hi {lead['first_name']}", "status": status, "provider": provider,
        "provider_message_id": provider_message_id, "message_id": message_id, "cost_usd": 0.0, "attempts": 1,
        "recorded_at": sent_at, "sent_at": sent_at if status == "sent" else None, "updated_at": sent_at,
    }


def seed_sends(con, rows: list[dict]) -> None:
    insert_new(con, "sends", pd.DataFrame(rows))


def twilio_headers(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def resend_request(body: dict, msg_id: str, at: datetime, secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(at.timestamp())
    return raw, {"svix-id": msg_id, "svix-timestamp": str(stamp), "svix-signature": Webhook(secret).sign(msg_id, datetime.fromtimestamp(stamp, UTC), raw.decode()),
                 "content-type": "application/json"}


def ingest_landed(driver, instance: dg.DagsterInstance, now: datetime, cursor: str | None = None) -> str | None:
    """One landing-sensor tick and the run it asks for; returns the new cursor (None when nothing was requested)."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    request = landing_sensor(context)
    if not isinstance(request, dg.RunRequest):
        return None
    result = driver.run(TRACK, now, run_config=request.run_config)
    assert result.success
    return context.cursor


def later(hours: float) -> datetime:
    return SENT_AT + timedelta(hours=hours)
