"""The REST API through an HTTP client against the whole app (webhooks and API in one server): keys, uploads, launch
checks, errors as JSON, the audit trail and the OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from outbound_pipeline.cli import apikey as apikey_cli
from outbound_pipeline.http import auth
from outbound_pipeline.http.api_app import routes
from outbound_pipeline.http.api_context import Surface
from outbound_pipeline.http.app import create_app
from outbound_pipeline.store import api_campaigns, warehouse
from outbound_pipeline.store.campaigns import status_history

NOW = datetime(2026, 1, 5, 15, 0)  # a Monday, 10:00 in New York: inside the default sending window for US numbers
SEED_CSV = (b"phone_number,name,email,company,demo_date\n"
            b"+15551234567,Alice Johnson,alice@acme.com,Acme Corp,2026-02-18\n"
            b"+15559876543,Bob Martinez,bob@beta.io,Beta Inc,2026-02-19\n"
            b"+15555550100,Carol Lee,carol@gamma.co,Gamma LLC,2026-02-20\n")
SMS_CAMPAIGN = {"name": "Appointment Reminders", "agent_id": "AGENT_UUID", "phone_number_id": 12, "channel": "sms",
                "sms_template": "Hi {{name}}, this is a reminder about your demo on {{demo_date}}. Reply CONFIRM."}


@dataclass
class Served:
    client: TestClient
    surface: Surface
    headers: dict[str, str]
    clock: list[datetime]

    def create(self, body: dict | None = None) -> str:
        response = self.client.post("/api/campaigns", headers=self.headers, json=body or SMS_CAMPAIGN)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def upload(self, campaign_id: str, data: bytes = SEED_CSV, name: str = "contacts.csv") -> dict:
        response = self.client.post(f"/api/campaigns/{campaign_id}/upload-csv", headers=self.headers, files={"file": (name, data, "text/csv")})
        return {"status": response.status_code, **response.json()}


def serve(workdir: Path, instance: dg.DagsterInstance, now: datetime = NOW) -> tuple[TestClient, Surface, list[datetime]]:
    clock = [now]
    surface = Surface(db_path=str(workdir / "outbound.duckdb"), campaigns_dir=workdir / "campaigns", instance=lambda: instance,
                      now=lambda: clock[0])
    app = create_app(None, None, workdir / "landing", unsubscribe_secret="u" * 32, extra_routes=routes(surface))
    return TestClient(app), surface, clock


@pytest.fixture(name="served")
def served_fixture(workdir: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The whole app (webhooks and API) on a private database, with an API key named `crm`."""
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", "u" * 32)
    client, surface, clock = serve(workdir, instance)
    key = auth.create_key(surface.db_path, "crm", "api", NOW)
    with client:
        yield Served(client, surface, {"Authorization": f"Bearer {key}"}, clock)


def test_a_missing_or_wrong_key_gets_401_and_changes_nothing(served: Served) -> None:
    c = served.client
    wrong = served.headers["Authorization"][:-4] + "AAAA"
    reviewer = auth.create_key(served.surface.db_path, "rita", "reviewer", NOW)
    for headers in ({}, {"Authorization": wrong}, {"Authorization": "Bearer nonsense"}, {"Authorization": f"Bearer {reviewer}"}):
        response = c.post("/api/campaigns", headers=headers, json=SMS_CAMPAIGN)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "error" in response.json()
    assert c.get("/api/campaigns").status_code == 401
    assert c.get("/api/campaigns", headers=served.headers).json() == {"campaigns": []}
    with warehouse.connect(served.surface.db_path) as con:
        assert api_campaigns.audit_trail(con).empty
    assert not (served.surface.campaigns_dir / "appointment-reminders.yaml").exists()


def test_uploads_over_5_mb_are_413_and_other_files_400(served: Served) -> None:
    campaign = served.create()
    six_mb = b"phone_number,name\n" + b"+15551234567,Alice Johnson\n" * (6 * 1024 * 1024 // 27)
    assert served.upload(campaign, six_mb)["status"] == 413
    txt = served.upload(campaign, SEED_CSV, "contacts.txt")
    assert txt["status"] == 400 and ".csv" in txt["error"]
    no_file = served.client.post(f"/api/campaigns/{campaign}/upload-csv", headers=served.headers, data={"other": "x"})
    assert no_file.status_code == 400
    assert served.client.get(f"/api/campaigns/{campaign}", headers=served.headers).json()["contacts"] == 0


def test_several_uploads_skip_duplicate_phones(served: Served) -> None:
    campaign = served.create()
    first = served.upload(campaign)
    assert (first["status"], first["imported"], first["skipped"]) == (200, 3, 0)
    again = served.upload(campaign, SEED_CSV + b"+15550001111,Dan Ray,dan@delta.io,Delta,2026-02-21\n")
    assert (again["imported"], again["skipped"], again["contacts_total"]) == (1, 3, 4)
    assert {line["kind"] for line in again["lines"]} == {"skipped"}


def test_scheduled_at_without_offset_is_422_and_with_one_schedules(served: Served) -> None:
    campaign = served.create()
    served.upload(campaign)
    bare = served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={"scheduled_at": "2026-03-01T09:00:00"})
    assert bare.status_code == 422
    assert "zone offset" in bare.json()["error"]
    assert served.client.get(f"/api/campaigns/{campaign}", headers=served.headers).json()["status"] == "draft"
    later = served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={"scheduled_at": "2026-03-01T09:00:00-05:00"})
    assert later.status_code == 200, later.text
    assert later.json()["status"] == "scheduled"


def test_launch_is_verified_first_and_answers_with_what_failed(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TWILIO_MESSAGING_SERVICE_SID", "TWILIO_SMS_FROM_NUMBERS"):
        monkeypatch.delenv(var, raising=False)
    campaign = served.create({"name": "No sender", "channel": "sms", "live": True})
    response = served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={})
    assert response.status_code == 422
    failures = response.json()["failures"]
    assert any("sms_template" in f for f in failures)
    assert any(f.startswith("no contacts") for f in failures)
    assert any(f.startswith("no sender for sms") for f in failures)
    assert any("TWILIO_ACCOUNT_SID" in f for f in failures)
    assert served.client.get(f"/api/campaigns/{campaign}", headers=served.headers).json()["status"] == "draft"


def test_upload_to_a_running_campaign_is_409_and_a_draft_only_changes_while_draft(served: Served) -> None:
    campaign = served.create()
    renamed = served.client.patch(f"/api/campaigns/{campaign}", headers=served.headers, json={"retry_attempts": 2})
    assert renamed.status_code == 200 and renamed.json()["retry_attempts"] == 2
    served.upload(campaign)
    launched = served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={})
    assert launched.status_code == 200, launched.text
    refused = served.upload(campaign)
    assert refused["status"] == 409 and "pause" in refused["error"]
    assert served.client.patch(f"/api/campaigns/{campaign}", headers=served.headers, json={"name": "x"}).status_code == 409
    assert served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={}).status_code == 409
    assert served.client.post(f"/api/campaigns/{campaign}/resume", headers=served.headers).status_code == 409


def test_errors_are_json_with_the_right_status(served: Served) -> None:
    c, h = served.client, served.headers
    missing = c.get("/api/campaigns/nope", headers=h)
    assert missing.status_code == 404 and missing.json() == {"error": "no campaign 'nope'"}
    broken = c.post("/api/campaigns", headers={**h, "Content-Type": "application/json"}, content=b"{not json")
    assert broken.status_code == 400 and "JSON" in broken.json()["error"]
    invalid = c.post("/api/campaigns", headers=h, json={"name": "x", "max_concurrent": 0, "colour": "red"})
    assert invalid.status_code == 422
    assert {p["field"] for p in invalid.json()["problems"]} == {"max_concurrent", "colour"}
    assert c.get("/api/campaigns/nope/contacts?page=0", headers=h).status_code == 422
    huge = c.post("/api/campaigns", headers={**h, "Content-Type": "application/json"}, content=b'{"name": "' + b"x" * 2_000_000 + b'"}')
    assert huge.status_code == 413 and "error" in huge.json()


def test_every_change_is_recorded_with_the_keys_name(served: Served) -> None:
    def tick() -> None:
        served.clock[0] += timedelta(minutes=1)

    campaign = served.create()
    tick()
    served.upload(campaign)
    tick()
    served.client.post(f"/api/campaigns/{campaign}/launch", headers=served.headers, json={})
    tick()
    served.client.post(f"/api/campaigns/{campaign}/pause", headers=served.headers)
    tick()
    served.upload(campaign, SEED_CSV, "more.txt")
    with warehouse.connect(served.surface.db_path) as con:
        trail = api_campaigns.audit_trail(con, campaign)
        moves = status_history(con, campaign)
    assert list(trail["action"]) == ["create", "upload", "launch", "pause", "upload"]
    assert set(trail["key_name"]) == {"crm"}
    assert list(trail["status_code"]) == [201, 200, 200, 200, 400]
    by_move = dict(zip(moves["to_status"], moves["actor"], strict=True))
    assert (by_move["draft"], by_move["paused"]) == ("api:crm", "api:crm")


def test_duplicate_copies_a_campaign_as_a_new_draft(served: Served) -> None:
    campaign = served.create()
    copy = served.client.post(f"/api/campaigns/{campaign}/duplicate", headers=served.headers, json={"name": "Reminders again"})
    assert copy.status_code == 201
    body = copy.json()
    assert (body["id"], body["status"], body["sms_template"]) == ("reminders-again", "draft", SMS_CAMPAIGN["sms_template"])
    ids = [c["id"] for c in served.client.get("/api/campaigns", headers=served.headers).json()["campaigns"]]
    assert ids.count("reminders-again") == 1 and campaign in ids


def test_openapi_description_interactive_docs_and_csv_template(served: Served) -> None:
    spec = served.client.get("/openapi.json").json()
    assert {"/api/campaigns", "/api/campaigns/{campaign_id}/upload-csv", "/api/campaigns/{campaign_id}/launch",
            "/api/campaigns/{campaign_id}/stats", "/api/campaigns/{campaign_id}/contacts"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "multipart/form-data" in spec["paths"]["/api/campaigns/{campaign_id}/upload-csv"]["post"]["requestBody"]["content"]
    assert "swagger" in served.client.get("/docs").text.lower()
    template = served.client.get("/api/campaigns/download-template", headers=served.headers)
    assert template.headers["content-type"].startswith("text/csv")
    assert template.text.splitlines()[0] == "phone_number,name,email,company,deal_stage,notes"
    assert served.client.get("/healthz").json()["ok"] is True  # the webhooks still answer beside the API


def test_apikey_create_prints_the_key_once_and_stores_only_its_hash(workdir: Path) -> None:
    db = str(workdir / "outbound.duckdb")
    printed = apikey_cli.create("back office", db)
    key = printed.splitlines()[0]
    assert key.startswith("obk_")
    with warehouse.connect(db) as con:
        stored = con.execute("SELECT * FROM api_keys").fetchall()
        assert auth.verify_key(con, key) is not None
    assert key not in repr(stored)
    assert auth.hash_key(key) in repr(stored)
    assert "back office" in apikey_cli.listing(db)
    assert "revoked" in apikey_cli.revoke("back office", db)
    with warehouse.connect(db) as con:
        assert auth.verify_key(con, key) is None
