"""The review inbox and the campaign pages over HTTP: sign-in, CSRF, one decision per click under `decide()`'s rules,
the approvals asset pointing at the inbox, and pause/resume from the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.http import auth
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import drafts as draft_store
from outbound_pipeline.store import warehouse
from tests.http.test_api import serve

NOW = datetime(2026, 1, 5, 9, 0)  # Monday 10:00 in Madrid, inside the campaign's window
CAMPAIGN_YAML = """\
name: {name}
goal: Book a 20-minute call with chief operating officers about hourly re-planned routing.
type: oneshot
approval: batch
batch_spot_check: 3
owner_email: owner@example.com
audience:
  lead_list: sample_leads.csv
  filter:
    role: [COO]
sending_window: {{start: "08:00", end: "21:00", days: [mon, tue, wed, thu, fri], default_timezone: Europe/Madrid}}
steps:
  - {{name: intro, delay: 0h, channels: [email, whatsapp, sms], intent: introduce, cta: a 20-minute call next week}}
"""


def launch_batch_campaign(workdir: Path, instance: dg.DagsterInstance, name: str = "inbox_batch") -> str:
    """A composed campaign in batch review, launched: its first touch is drafted at launch and waits for a person."""
    (workdir / "campaigns" / f"{name}.yaml").write_text(CAMPAIGN_YAML.format(name=name), encoding="utf-8")
    message = commands.launch(name, str(workdir / "outbound.duckdb"), instance, NOW, campaigns_dir=str(workdir / "campaigns"))
    assert "first touch run now" in message, message
    return name


def sign_in(client: TestClient, key: str, target: str = "/inbox") -> str:
    """Sign in through the form; returns the session's CSRF token as the page carries it."""
    form = client.get(f"/signin?next={target}").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    done = client.post("/signin", data={"nonce": nonce, "key": key, "next": target}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == target
    page = client.get(target)
    assert page.status_code == 200
    return re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


@dataclass
class Inbox:
    client: TestClient
    campaign: str
    key: str
    db: str
    driver: Driver

    def waiting(self) -> list[str]:
        with warehouse.connect(self.db) as con:
            return list(draft_store.waiting_for_review(con, self.campaign, 1)["draft_id"])


@pytest.fixture
def inbox(workdir: Path, instance: dg.DagsterInstance, driver: Driver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", "u" * 32)
    campaign = launch_batch_campaign(workdir, instance)
    client, surface, _ = serve(workdir, instance, NOW)
    key = auth.create_key(surface.db_path, "rita", "reviewer", NOW)
    with client:
        yield Inbox(client, campaign, key, surface.db_path, driver)


def test_pages_need_a_signed_in_reviewer(inbox: Inbox) -> None:
    c = inbox.client
    away = c.get("/inbox", follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/signin?next=/inbox")
    form = c.get("/signin").text
    nonce = re.search(r'name="nonce" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    wrong = c.post("/signin", data={"nonce": nonce, "key": inbox.key[:-3] + "xyz", "next": "/inbox"}, follow_redirects=False)
    assert "error=wrong" in wrong.headers["location"]
    forged = c.post("/signin", data={"nonce": "not-the-cookie", "key": inbox.key, "next": "/inbox"}, follow_redirects=False)
    assert "error=expired" in forged.headers["location"]
    assert auth.SESSION_COOKIE not in c.cookies
    assert c.get("/campaigns", follow_redirects=False).status_code == 303


def test_one_click_decisions_follow_the_review_rules(inbox: Inbox) -> None:
    c = inbox.client
    csrf = sign_in(c, inbox.key)
    page = c.get("/inbox").text
    waiting = inbox.waiting()
    assert len(waiting) >= 5
    assert all(d in page for d in waiting[:5]) and "spot-check 3 more first" in page
    assert "Content-Security-Policy" in c.get("/inbox").headers
    first, second, third = waiting[:3]
    json_headers = {"Accept": "application/json"}

    no_token = c.post("/inbox/decide", data={"draft_id": first, "decision": "approve"}, headers=json_headers)
    assert no_token.status_code == 403 and inbox.waiting() == waiting

    early = c.post("/inbox/approve-rest", data={"campaign": inbox.campaign, "touch": "1", "csrf": csrf}, headers=json_headers)
    assert early.status_code == 409 and "spot-checked one by one first" in early.json()["error"]

    ok = c.post("/inbox/decide", data={"draft_id": first, "decision": "approve", "csrf": csrf}, headers=json_headers)
    assert ok.status_code == 200 and ok.json()["decision"] == "approved"
    again = c.post("/inbox/decide", data={"draft_id": first, "decision": "reject"}, headers={**json_headers, "X-CSRF-Token": csrf})
    assert again.status_code == 409 and "decisions are final" in again.json()["error"]
    edited = c.post("/inbox/decide", data={"draft_id": second, "decision": "edit", "text": "Shorter and kinder.", "csrf": csrf},
                    headers=json_headers)
    assert edited.json()["decision"] == "edited"
    # a form post without scripts answers with a redirect back to the inbox and a notice
    plain = c.post("/inbox/decide", data={"draft_id": third, "decision": "reject", "csrf": csrf}, follow_redirects=False)
    assert plain.status_code == 303 and "notice=" in plain.headers["location"]

    rest = c.post("/inbox/approve-rest", data={"campaign": inbox.campaign, "touch": "1", "csrf": csrf}, headers=json_headers)
    assert rest.status_code == 200 and rest.json()["approved"] == len(waiting) - 3
    assert inbox.waiting() == []
    with warehouse.connect(inbox.db) as con:
        decided = draft_store.touch_decisions(con, inbox.campaign, 1).set_index("draft_id")
    assert set(decided["reviewer"]) == {"rita"}
    assert (decided.loc[first, "decision"], decided.loc[second, "decision"], decided.loc[third, "decision"]) == (
        "approved", "edited", "rejected")
    assert "Nothing is waiting for review." in c.get("/inbox").text


def test_approvals_links_to_the_inbox_and_says_how_many_wait(inbox: Inbox) -> None:
    key = touch_key(inbox.campaign, 1)
    result = inbox.driver.run(["approvals"], NOW, key)
    metadata = result.asset_materializations_for_node("approvals")[0].metadata
    n = len(inbox.waiting())
    assert metadata["waiting_for_review"].value == f"{n} drafts wait for a person in the review inbox: {metadata['inbox'].value}"
    assert metadata["inbox"].value == f"http://127.0.0.1:8787/inbox?campaign={inbox.campaign}&touch=1"
    check = result.get_asset_check_evaluations()[0]
    assert (check.check_name, check.passed, check.severity) == ("no_draft_waits_for_review", False, dg.AssetCheckSeverity.WARN)


def test_campaign_page_pauses_and_resumes_with_the_reviewers_name(inbox: Inbox) -> None:
    c = inbox.client
    csrf = sign_in(c, inbox.key, f"/campaigns/{inbox.campaign}")
    assert inbox.campaign in c.get("/campaigns").text
    forged = c.post(f"/campaigns/{inbox.campaign}/pause", headers={"Accept": "application/json"})
    assert forged.status_code == 403
    paused = c.post(f"/campaigns/{inbox.campaign}/pause", headers={"Accept": "application/json", "X-CSRF-Token": csrf})
    assert paused.status_code == 200 and paused.json()["actor"] == "web:rita"
    assert c.get(f"/campaigns/{inbox.campaign}/live.json").json()["campaign"]["status"] == "paused"
    assert c.post(f"/campaigns/{inbox.campaign}/pause", headers={"Accept": "application/json", "X-CSRF-Token": csrf}).status_code == 409
    resumed = c.post(f"/campaigns/{inbox.campaign}/resume", data={"csrf": csrf}, follow_redirects=False)
    assert resumed.status_code == 303
    live = c.get(f"/campaigns/{inbox.campaign}/live.json?q=a").json()
    assert live["campaign"]["status"] == "running"
    assert set(live["funnel"]) == {"queued", "sent", "delivered", "read", "replied", "failed"}
    assert live["tier"]["allowance"] == 2000


def test_a_card_shows_segments_and_flags_in_words() -> None:
    import json

    import pandas as pd

    from outbound_pipeline.http.inbox import card

    body = "Hi {{first_name}}, your appointment is on Friday. " * 5
    row = {"draft_id": "drf_1", "campaign_id": "c", "touch": 1, "lead_id": "lead_1", "first_name": "Ana", "last_name": None,
           "role": "COO", "company": "Acme", "channel": "sms", "to_address": "+34600000000", "subject": None, "body": body,
           "flags": json.dumps(["template_variable_missing:first_name", "too_long", "no_citation"]), "cited_snippet_ids": "[]",
           "composer": "template", "reply_body": None, "created_at": NOW, "approval_mode": "manual"}
    shown = card(row, pd.DataFrame())
    assert (shown["lead"], shown["where"], shown["encoding"], shown["segments"]) == ("Ana", "COO, Acme", "GSM-7", 2)
    assert [f["text"] for f in shown["flags"]] == ["missing variable: first_name", "over length", "no citation"]
    assert shown["template"] is True and shown["snippets"] == []
