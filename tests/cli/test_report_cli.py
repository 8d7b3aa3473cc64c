"""`outbound report CAMPAIGN`: one self-contained HTML file with the campaign's numbers, and a terminal summary."""

from __future__ import annotations

import base64
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from outbound_pipeline.cli.main import main
from tests.store.metrics_fixtures import DAY2, build_campaign

CHROMIUM = Path("/usr/bin/chromium")


class Page(HTMLParser):
    """The page's text, its images and anything that would load or run."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "script" or (tag == "link" and values.get("href")):
            self.external.append(tag)
        if tag not in ("meta", "img", "br", "link", "!doctype"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def report(workdir, db, monkeypatch, capsys):
    with db() as con:
        build_campaign(con)
    monkeypatch.setenv("OUTBOUND_NOW", (DAY2 + timedelta(days=3)).isoformat())
    out = workdir / "reports" / "c1.html"
    assert main(["report", "c1", "--out", str(out)]) == 0
    return out, capsys.readouterr().out


def test_report_is_one_self_contained_page_with_the_campaigns_numbers(report):
    out, _ = report
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    page.close()
    text = " ".join(" ".join(page.text).split())
    assert "Campaign report: c1" in text
    for number in ("83.3%", "50.0%", "20.0%", "25.0%", "$0.716", "step 1", "channel whatsapp", "more sends per variant needed"):
        assert number in text, number  # delivery 5/6, reply 2/4 and CTA 1/2, bounce 1/5, opt-out 1/4, total cost
    assert len(page.images) == 3  # funnel, rates over time, the A/B intervals of step 1
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert page.external == [] and page.open == []  # nothing loaded or run; every element closed


def test_terminal_summary_prints_rates_verdicts_and_cost(report):
    out, printed = report
    assert "Campaign c1" in printed and "50.0%" in printed and "83.3%" in printed
    assert "step 1: no difference yet" in printed
    assert "total $0.716" in printed and f"Report: {out}" in printed


def test_unknown_campaign_is_a_clear_error(workdir, db, capsys):
    with db() as con:
        build_campaign(con)
    assert main(["report", "nope"]) == 2
    assert "no campaign 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed at /usr/bin/chromium")
def test_report_opens_in_a_browser(report):
    from playwright.sync_api import sync_playwright

    out, _ = report
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(out.as_uri())
            assert page.title() == "Campaign report: c1"
            assert "83.3%" in page.inner_text("body")
            widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
            assert widths == [800, 800, 800]  # every chart decoded
            assert errors == []
        finally:
            browser.close()


def test_one_leads_path_from_research_to_replies(workdir, db, capsys):
    with db() as con:
        build_campaign(con)
    assert main(["report", "c1", "--lead", "L2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    stages = [line.split()[2] for line in lines[1:]]
    assert lines[0] == "Lead L2 in c1"
    assert stages == ["research", "draft", "send", "event", "event", "reply", "draft", "send", "event", "reply"]
    assert any("question" in line for line in lines) and any("not_now" in line for line in lines)
    assert main(["report", "c1", "--lead", "nobody"]) == 2
    assert "nothing happened to lead 'nobody'" in capsys.readouterr().err


def test_forecast_prints_audience_messages_days_and_cost(workdir, capsys):
    assert main(["forecast", "demo_drip"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Forecast for demo_drip")
    assert "by email" in printed and "days to finish" in printed and "cost: $" in printed and "upper bound" in printed
    assert main(["forecast", "no_such_campaign"]) == 2
