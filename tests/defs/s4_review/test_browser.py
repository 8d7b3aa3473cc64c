"""End to end in a real browser: the review queue as a reviewer sees it on the `approvals` asset page.

Starts `dagster-webserver` on a free loopback port against a temporary instance and DuckDB,
and drives Debian's Chromium with Playwright (Playwright's own browser download is not used).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from outbound_pipeline import settings
from outbound_pipeline.defs.partitions import campaign_partitions, touch_partitions
from outbound_pipeline.runner import LAUNCH, TOUCH, Driver
from tests.conftest import MONDAY_MORNING
from tests.defs.s4_review.conftest import write_campaign

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """A manual-approval touch drafted into a fresh DAGSTER_HOME, and the Dagster UI serving it; yields (base url, counts)."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    name = write_campaign(workdir, "review_ui", "manual")
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(campaign_partitions.name, [name])
        instance.add_dynamic_partitions(touch_partitions.name, [f"{name}.t1"])
        driver = Driver(instance, str(workdir / "outbound.duckdb"))
        driver.run(LAUNCH, MONDAY_MORNING, name)
        result = driver.run(TOUCH, MONDAY_MORNING, f"{name}.t1")
        meta = result.asset_materializations_for_node("approvals")[0].metadata
        expected = {"waiting": meta["waiting"].value, "queue": meta["review_queue"].value}

    port = _free_port()
    log = (tmp_path / "webserver.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-m", "outbound_pipeline.definitions",
                               "-h", "127.0.0.1", "-p", str(port)], cwd=settings.REPO_ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("dagster-webserver did not come up:\n" + (tmp_path / "webserver.log").read_text()[-3000:])
                time.sleep(0.3)
        yield base, expected
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_approvals_page_shows_the_review_queue(webserver):
    from playwright.sync_api import expect, sync_playwright

    base, expected = webserver
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # The UI may greet a new instance with a newsletter dialog; dismiss it whenever it shows up.
            page.add_locator_handler(page.get_by_role("dialog").filter(has_text="Join the Dagster community"),
                                     lambda dialog: dialog.get_by_role("button", name="Skip").click())
            page.goto(f"{base}/assets/approvals", wait_until="domcontentloaded")

            # Latest materialisation metadata: the counts, and the queue behind "Show Markdown".
            waiting = page.get_by_role("row").filter(has=page.get_by_text("waiting", exact=True))
            expect(waiting).to_contain_text(str(expected["waiting"]), timeout=30_000)
            for count in ("approved", "edited", "rejected"):
                expect(page.get_by_role("row").filter(has=page.get_by_text(count, exact=True))).to_contain_text("0")
            show = page.get_by_role("row").filter(has_text="review_queue").get_by_text("[Show Markdown]")
            queue = page.get_by_role("dialog").filter(has_text="Grounded in")
            for _attempt in range(3):  # the UI's newsletter dialog, dismissed by the handler, can close the queue's as it opens
                show.click()
                try:
                    expect(queue).to_be_visible(timeout=5_000)
                    break
                except AssertionError:
                    continue
            expect(queue).to_be_visible()
            expect(queue.locator("table th")).to_have_text(["draft_id", "lead", "channel", "text", "snippets"])
            expect(queue.locator("table tbody tr")).to_have_count(min(expected["waiting"], 25))
            expect(queue).to_contain_text(f"review_ui touch 1: {expected['waiting']} drafts: {expected['waiting']} waiting")
            first_draft = expected["queue"].split("#### `", 1)[1].split("`", 1)[0]
            expect(queue.locator("h4").first).to_contain_text(first_draft)
            assert queue.locator("blockquote").count() >= 1  # the draft text
            assert queue.locator("a[href^='https://']").count() >= expected["waiting"] // 2  # cited snippets link to their sources
        finally:
            browser.close()
