"""The campaign report: one self-contained, well-formed HTML page with the campaign's numbers, nothing injectable."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pandas as pd

from outbound_pipeline.domain.experiments import ABVerdict, verdict
from outbound_pipeline.engine.charts import funnel_frame
from outbound_pipeline.engine.report import render_html_report, terminal_summary

VOID = {"meta", "img", "br", "hr", "link", "input"}


class Page(HTMLParser):
    """Collects tags, text and image sources, and checks that every element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.errors.append(f"unexpected </{tag}>")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.open == []
    return parser


def summary(campaign_id: str = "demo_drip") -> pd.DataFrame:
    return pd.DataFrame({
        "campaign_id": [campaign_id, campaign_id], "touch": [0, 1], "sent": [693, 266], "delivered": [673, 257],
        "replied": [58, 21], "delivery_rate": [673 / 693, 257 / 266], "reply_rate": [58 / 673, 21 / 257], "cost_usd": [4.5612, 1.2],
    })


def ab(step: str = "intro", variant: str = "warm") -> ABVerdict:
    variants = pd.DataFrame([("direct", 900, 73), (variant, 900, 128)], columns=["variant", "trials", "successes"])
    return verdict(variants, baseline_rate=0.08, mde=0.04, step=step)


def report(campaign_id: str = "demo_drip", verdicts: list[ABVerdict] | None = None, cost: dict[str, object] | None = None) -> str:
    funnel = funnel_frame({"entered": 300, "sent": 266, "delivered": 257, "engaged": 127, "replied": 21})
    daily = pd.DataFrame({"day": pd.date_range("2026-03-02", periods=5).date, "reply_rate": [0.05, 0.07, 0.08, 0.09, 0.1]})
    return render_html_report(campaign_id, summary(campaign_id), funnel, daily, [ab()] if verdicts is None else verdicts,
                              cost if cost is not None else {"research": 0.24, "compose": 0.0123, "send": 4.3, "total": 4.5523})


def test_the_page_carries_the_campaign_numbers_as_percentages_and_dollars() -> None:
    page = report()
    text = " ".join(parse(page).text)
    for expected in ("Campaign report: demo_drip", "693", "97.1%", "8.6%", "96.6%", "$4.56", "$4.55", "$0.0123",
                     "winner: warm (reply rate 14.2% vs 8.1%, p<0.001)", "88.7%", "Cost", "A/B tests", "intro"):
        assert expected in text, expected


def test_the_page_is_self_contained_with_charts_as_data_uris() -> None:
    page = report()
    parsed = parse(page)
    assert len(parsed.images) == 3  # funnel, rates over time, one A/B chart
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "script" not in parsed.tags and "link" not in parsed.tags
    assert "http://" not in page and "https://" not in page
    assert "default-src 'none'" in page  # nothing may load or run, even if something slipped through


def test_user_provided_names_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    page = report(campaign_id=evil, verdicts=[ab(step=evil, variant=evil)], cost={evil: 1.0})
    parsed = parse(page)
    assert "script" not in parsed.tags
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert evil in " ".join(parsed.text)  # shown to the reader as text


def test_without_variants_or_data_the_page_still_renders() -> None:
    page = render_html_report("empty", summary().iloc[0:0], pd.DataFrame(columns=["stage", "count"]),
                              pd.DataFrame(columns=["day", "reply_rate"]), [], {})
    text = " ".join(parse(page).text)
    assert "No step of this campaign has variants." in text and "none yet" in text


def test_terminal_summary_has_the_table_the_verdicts_and_the_cost() -> None:
    out = terminal_summary("demo_drip", summary(), [ab()], {"total": 4.5523})
    assert out.splitlines()[0] == "Campaign demo_drip"
    assert "97.1%" in out and "8.6%" in out and "$4.56" in out
    assert "intro: winner: warm (reply rate 14.2% vs 8.1%, p<0.001)" in out
    assert "Cost: total $4.55" in out


def test_terminal_summary_drops_control_characters_from_names() -> None:
    out = terminal_summary("demo\x1b[2J_drip", summary("x\ry"), [ab(step="in\x1b]0;owned\x07tro")])
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out


def test_a_campaign_that_placed_calls_shows_their_outcomes(tmp_path) -> None:
    from datetime import timedelta
    from decimal import Decimal

    from outbound_pipeline.engine.report import campaign_report, campaign_terminal_summary, load_campaign
    from outbound_pipeline.store import warehouse
    from tests.store.metrics_fixtures import DAY2, build_campaign, insert

    with warehouse.connect(tmp_path / "v.duckdb") as con:
        build_campaign(con)
        without = load_campaign(con, "c1", DAY2 + timedelta(days=3))
        insert(con, "call_metrics", campaign_id="c1", contacts=10, calls_placed=12, answered_human=6, voicemail=3, no_answer=2, failed=1,
               avg_duration_s=84.5, billed_minutes=14, cost_usd=Decimal("0.196"), cost_per_minute=Decimal("0.014"),
               outcomes='{"interested": 2, "not_interested": 4}', updated_at=DAY2)
        campaign = load_campaign(con, "c1", DAY2 + timedelta(days=3))
    assert without.calls is None and "Voice calls" not in campaign_report(without)
    assert campaign.calls is not None and int(campaign.calls.iloc[0]["answered_human"]) == 6
    page = campaign_report(campaign)
    assert "<h2>Voice calls</h2>" in page and "not_interested" in page and "$0.196" in page
    assert "Voice calls: 12 placed to 10 contacts, 6 answered by a person, 3 voicemail, 2 no answer, 1 failed" in campaign_terminal_summary(campaign)
