"""Seed 004's whole flow over HTTP: create, upload the seed's CSV, launch, stats, contacts by status, pause, resume;
for an SMS campaign (the seed's SMS section) and for the seed's end-to-end voice example exactly as it is written."""

from __future__ import annotations

from datetime import timedelta

from outbound_pipeline.http import auth
from tests.http.test_api import NOW, SEED_CSV, SMS_CAMPAIGN, Served, served_fixture  # noqa: F401  (the `served` fixture)
from tests.http.test_api_inbox import sign_in

# The seed's end-to-end example, step 1, as written.
SEED_VOICE_CAMPAIGN = {
    "name": "Demo Follow-Up Calls",
    "agent_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "phone_number_id": 12,
    "max_concurrent": 3,
    "retry_attempts": 2,
    "retry_delay_minutes": 45,
    "number_pool": ["11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
                    "33333333-3333-3333-3333-333333333333"],
}


def test_seed_flow_for_an_sms_campaign(served: Served) -> None:
    c, h = served.client, served.headers
    created = c.post("/api/campaigns", headers=h, json=SMS_CAMPAIGN)
    assert created.status_code == 201
    campaign = created.json()["id"]
    assert created.json()["status"] == "draft"

    uploaded = served.upload(campaign)
    assert (uploaded["status"], uploaded["read"], uploaded["imported"]) == (200, 3, 3)
    before = c.get(f"/api/campaigns/{campaign}/stats", headers=h).json()
    assert (before["campaign_status"], before["contacts"]["total"], before["contacts"]["pending"], before["progress"]) == ("draft", 3, 3, 0)

    launched = c.post(f"/api/campaigns/{campaign}/launch", headers=h, json={})
    assert launched.status_code == 200, launched.text
    assert launched.json()["status"] == "running"
    assert "first touch run now" in launched.json()["message"]  # the messages went out with the launch, not at the next tick

    served.clock[0] += timedelta(minutes=5)
    stats = c.get(f"/api/campaigns/{campaign}/stats", headers=h).json()
    assert set(stats) >= {"campaign_id", "campaign_status", "contacts", "progress", "message_metrics"}
    assert (stats["campaign_id"], stats["campaign_status"]) == (campaign, "running")
    assert stats["contacts"]["total"] == 3
    assert stats["contacts"]["sent"] + stats["contacts"]["failed"] + stats["contacts"]["delivered"] == 3
    assert stats["progress"] == 100
    assert stats["message_metrics"]["sent"] + stats["message_metrics"]["failed"] >= 3

    sent = c.get(f"/api/campaigns/{campaign}/contacts?status=sent&page=1&limit=2", headers=h).json()
    assert sent["total"] == stats["contacts"]["sent"] and len(sent["contacts"]) == min(2, sent["total"])
    row = sent["contacts"][0]
    assert {"status", "attempts", "duration_seconds", "error_message", "phone", "variables"} <= set(row)
    assert row["attempts"] == 1 and row["variables"]["demo_date"].startswith("2026-02-")
    failed = c.get(f"/api/campaigns/{campaign}/contacts?status=failed", headers=h).json()
    assert failed["total"] == stats["contacts"]["failed"]

    paused = c.post(f"/api/campaigns/{campaign}/pause", headers=h)
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    resumed = c.post(f"/api/campaigns/{campaign}/resume", headers=h)
    assert (resumed.status_code, resumed.json()["status"]) == (200, "running")
    listed = c.get("/api/campaigns", headers=h).json()["campaigns"]
    assert [(x["id"], x["status"], x["channel"], x["recipients"], x["phone_number_id"]) for x in listed] == [
        (campaign, "running", "sms", 3, 12)]


def test_seed_end_to_end_voice_example_as_written(served: Served) -> None:
    c, h = served.client, served.headers
    created = c.post("/api/campaigns", headers=h, json=SEED_VOICE_CAMPAIGN)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["channel"], body["problems"]) == ("draft", "voice", [])
    campaign = body["id"]
    csv = c.post(f"/api/campaigns/{campaign}/upload-csv", headers=h, files={"file": ("contacts.csv", SEED_CSV, "text/csv")})
    assert csv.status_code == 200 and csv.json()["imported"] == 3
    launched = c.post(f"/api/campaigns/{campaign}/launch", headers=h, json={})
    assert launched.status_code == 200, launched.text
    served.clock[0] += timedelta(minutes=10)
    stats = c.get(f"/api/campaigns/{campaign}/stats", headers=h).json()
    assert stats["campaign_id"] == campaign and stats["campaign_status"] in ("running", "completed")
    assert stats["contacts"]["total"] == 3
    assert set(stats["call_metrics"]) >= {"avg_duration_seconds", "max_duration_seconds", "min_duration_seconds", "total_attempts"}
    assert stats["call_metrics"]["total_attempts"] >= 1  # the launch placed the first calls
    failed = c.get(f"/api/campaigns/{campaign}/contacts?status=failed", headers=h)
    assert failed.status_code == 200
    assert all(r["status"] == "failed" for r in failed.json()["contacts"])
    if stats["campaign_status"] == "running":
        assert c.post(f"/api/campaigns/{campaign}/pause", headers=h).json()["status"] == "paused"
        assert c.post(f"/api/campaigns/{campaign}/resume", headers=h).json()["status"] == "running"

    # the campaign page shows the contacts by call status
    sign_in(c, auth.create_key(served.surface.db_path, "dana", "reviewer", NOW), f"/campaigns/{campaign}")
    live = c.get(f"/campaigns/{campaign}/live.json").json()
    assert live["statuses"] == ["pending", "calling", "completed", "failed", "no_answer", "voicemail"]
    assert sum(live["contacts"][s] for s in live["statuses"]) == 3
