"""A reviewer in a real browser (Playwright driving Debian's Chromium) against the server on a free port: signs in,
approves one draft, edits one, rejects one, is refused "approve the rest" before the spot check and then approves
the rest; the decisions are in `approvals`, the next touch run sends the approved ones, and the campaign page's funnel
shows the numbers `campaign_metrics` holds. No screenshots are written."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import uvicorn

from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.http import auth
from outbound_pipeline.http.api_app import routes
from outbound_pipeline.http.api_context import Surface
from outbound_pipeline.http.app import create_app
from outbound_pipeline.runner import TOUCH, Driver
from outbound_pipeline.store import drafts as draft_store
from outbound_pipeline.store import sends as send_store
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_metrics
from tests.http.test_api_inbox import NOW, launch_batch_campaign

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium "
                                                                                 "(.ci/run installs it with apt-get as root)")]


@dataclass
class Running:
    url: str
    campaign: str
    key: str
    db: str
    clock: list[datetime]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def running(workdir: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    """A launched batch-review campaign and the whole server (webhooks, API, pages) under uvicorn on a free port."""
    monkeypatch.setenv("OUTBOUND_UNSUBSCRIBE_SECRET", "u" * 32)
    campaign = launch_batch_campaign(workdir, instance)
    clock = [NOW]
    surface = Surface(db_path=str(workdir / "outbound.duckdb"), campaigns_dir=workdir / "campaigns", instance=lambda: instance,
                      now=lambda: clock[0])
    app = create_app(None, None, workdir / "landing", unsubscribe_secret="u" * 32, extra_routes=routes(surface))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    key = auth.create_key(surface.db_path, "rita", "reviewer", NOW)
    try:
        yield Running(f"http://127.0.0.1:{port}", campaign, key, surface.db_path, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_reviewer_decides_the_touch_in_the_browser(running: Running, driver: Driver) -> None:
    from playwright.sync_api import expect, sync_playwright

    with warehouse.connect(running.db) as con:
        waiting = list(draft_store.waiting_for_review(con, running.campaign, 1)["draft_id"])
    assert len(waiting) >= 5
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(running.url + "/inbox")
            expect(page).to_have_url(f"{running.url}/signin?next=/inbox")
            page.fill("#key", running.key)
            page.click("#signin")
            expect(page.locator("#waiting-total")).to_have_text(str(len(waiting)))
            cards = page.locator("#cards .card")
            expect(cards).to_have_count(len(waiting))
            order = cards.evaluate_all("cs => cs.map(c => c.dataset.draftId)")

            # before the spot check, approving the rest is refused with the reason
            page.click(".approve-rest-button")
            expect(page.locator("#flash .error")).to_contain_text("spot-checked one by one first")

            # one click approves the first draft
            cards.nth(0).locator("button.approve").click()
            expect(page.locator(f"#draft-{order[0]}")).to_have_count(0)
            # e opens the editor on the next one; Ctrl+Enter saves and approves the edited text
            page.keyboard.press("e")
            area = page.locator(f"#draft-{order[1]} textarea")
            expect(area).to_be_focused()
            area.fill("Hi, a shorter note: could we talk for 20 minutes next week?")
            page.keyboard.press("Control+Enter")
            expect(page.locator(f"#draft-{order[1]}")).to_have_count(0)
            # r rejects the one now in focus (j then k moves away and back)
            page.keyboard.press("j")
            page.keyboard.press("k")
            page.keyboard.press("r")
            expect(page.locator(f"#draft-{order[2]}")).to_have_count(0)
            expect(page.locator("#flash .notice")).to_contain_text("rejected by rita")

            page.click(".approve-rest-button")
            expect(cards).to_have_count(0)
            expect(page.locator("#waiting-total")).to_have_text("0")
            assert errors == []
        finally:
            browser.close()

    with warehouse.connect(running.db) as con:
        decided = draft_store.touch_decisions(con, running.campaign, 1).set_index("draft_id")
    assert set(decided["reviewer"]) == {"rita"} and len(decided) == len(waiting)
    assert (decided.loc[order[0], "decision"], decided.loc[order[1], "decision"], decided.loc[order[2], "decision"]) == (
        "approved", "edited", "rejected")

    # the send path is unchanged: the touch's next run queues and sends what was approved, never the rejected one
    later = NOW + timedelta(minutes=15)
    assert driver.run(TOUCH, later, touch_key(running.campaign, 1)).success
    with warehouse.connect(running.db) as con:
        sends = send_store.touch_sends(con, running.campaign, 1)
    sent_drafts = sends.assign(draft_id=sends["send_id"].str.replace("snd_", "drf_", regex=False)).set_index("draft_id")
    assert set(sent_drafts.index) == set(waiting) - {order[2]}  # a send id is its draft's id with another prefix
    assert (sends["status"] == "sent").sum() > 0
    assert sent_drafts.loc[order[1], "body"] == "Hi, a shorter note: could we talk for 20 minutes next week?"

    # the campaign page's funnel shows what campaign_metrics holds at the same moment
    running.clock[0] = later + timedelta(hours=1)
    assert driver.run(["campaign_metrics"], running.clock[0]).success
    with warehouse.connect(running.db) as con:
        metrics = campaign_metrics(con, running.campaign)
    whole = metrics[metrics["touch"] == 0].iloc[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(running.url + f"/campaigns/{running.campaign}")
            page.fill("#key", running.key)
            page.click("#signin")
            expect(page.locator("#status")).to_have_text("running")
            shown = {m: int(page.locator(f'[data-metric="{m}"]').inner_text()) for m in
                     ("queued", "sent", "delivered", "read", "replied", "failed")}
            assert shown == {m: int(whole[m]) for m in shown}
            assert shown["sent"] > 0
            before = page.locator("#as-of").inner_text()
            expect(page.locator("#as-of")).not_to_have_text("", timeout=5000)
            page.wait_for_timeout(3500)  # one poll of the page's JSON twin
            assert {m: int(page.locator(f'[data-metric="{m}"]').inner_text()) for m in shown} == shown
            assert page.locator("#as-of").inner_text() == before
            page.fill("#q", "zzz-nobody")
            page.keyboard.press("Enter")
            expect(page.locator("#recipient-total")).to_have_text("0 matching")
        finally:
            browser.close()
