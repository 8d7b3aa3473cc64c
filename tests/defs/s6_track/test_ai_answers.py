"""reply_mode ai: a reply -> an answer draft of the reply touch -> the same approval gate -> sent once, with the approved text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.defs.resources import ChannelService
from outbound_pipeline.domain.touches import parse_touch_key, touch_key
from outbound_pipeline.runner import LAUNCH, TOUCH
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s4_review.helpers import launch_review, ledger
from tests.defs.s6_track.helpers import CLEO, ingest_landed, later, seed_campaign, seed_leads, seed_sends, send_row
from tests.defs.s6_track.test_reactions import _land, _reply, _rows

CAMPAIGN_YAML = """\
name: {name}
goal: Book a 20-minute call with chief operating officers about hourly re-planned routing.
type: oneshot
approval: {mode}
reply_mode: ai
owner_email: owner@example.com
audience:
  lead_list: sample_leads.csv
  filter:
    role: [COO]
sending_window: {{start: "00:00", end: "23:59", days: [mon, tue, wed, thu, fri, sat, sun], default_timezone: Europe/Madrid}}
steps:
  - {{name: intro, delay: 0h, channels: [whatsapp, sms, email], intent: introduce, cta: a 20-minute call next week}}
"""


def _plan(driver, campaign: str, now) -> list[str]:
    result = driver.run(["cadence_plan"], now, campaign)
    return list(result.asset_materializations_for_node("cadence_plan")[0].metadata["due_touches"].value)


@pytest.fixture
def launched(driver, instance, workdir: Path, db):
    """A oneshot ai-mode campaign, launched, its touch approved and sent; returns (campaign, the send a lead replies to)."""

    def make(mode: str) -> tuple[str, dict]:
        name = f"answers_{mode}"
        (workdir / "campaigns" / f"{name}.yaml").write_text(CAMPAIGN_YAML.format(name=name, mode=mode), encoding="utf-8")
        add_campaign(instance, name)
        assert driver.run(LAUNCH, MONDAY_MORNING, name).success
        assert _plan(driver, name, MONDAY_MORNING) == [touch_key(name, 1)]
        assert driver.run(TOUCH, MONDAY_MORNING, touch_key(name, 1)).success
        if mode == "manual":
            assert launch_review(driver, touch_key(name, 1), {"reviewer": "dana", "approve_all_remaining": True}).success
        with db() as con:
            sent = con.execute("SELECT * FROM sends WHERE campaign_id = ? AND status = 'sent' AND channel <> 'email' ORDER BY send_id",
                               [name]).df()
        assert not sent.empty
        return name, sent.iloc[0].to_dict()

    return make


def test_manual_answer_waits_for_review_then_goes_out_with_the_edited_text(launched, driver, instance, db):
    campaign, replied_to = launched("manual")
    _land([_reply("SMlead1", replied_to["channel"], replied_to["to_address"], "Interesting. What does it cost per vehicle?", later(2))])
    ingest_landed(driver, instance, later(2.1))
    # Tracking stores the reply; the plan opens the reply touch, whose run drafts the answer.
    assert _plan(driver, campaign, later(2.1)) == [touch_key(campaign, 0)]
    assert driver.run(TOUCH, later(2.1), touch_key(campaign, 0)).success

    (answer_id, channel, lead_id, reply_id), = _rows(db, "SELECT draft_id, channel, lead_id, reply_id FROM drafts WHERE touch = 0")
    assert (channel, lead_id, reply_id) == (replied_to["channel"], replied_to["lead_id"], "SMlead1")
    assert _rows(db, f"SELECT status FROM recipients WHERE lead_id = '{lead_id}' AND campaign_id = '{campaign}'") == [("replied",)]

    # The plan opens the reply touch only while there is something to do there: manual mode waits for a person.
    assert _plan(driver, campaign, later(2.2)) == []
    before = set(ledger(driver))
    assert driver.run(TOUCH, later(2.2), touch_key(campaign, 0)).success  # a touch run sends nothing undecided
    assert _rows(db, "SELECT count(*) FROM sends WHERE touch = 0") == [(0,)]

    # A person edits the answer through the same review job as any draft; it is sent with the approved text.
    edited = "Thanks for asking. It is priced per vehicle per month; I'll send the sheet today."
    result = launch_review(driver, touch_key(campaign, 0), {"reviewer": "dana", "edits": {answer_id: edited}}, now=later(3))
    assert result.success
    assert _rows(db, "SELECT decision, reviewer, final_body, touch FROM approvals WHERE draft_id = ?".replace("?", f"'{answer_id}'")) == [
        ("edited", "dana", edited, 0)]
    (send,) = _rows(db, "SELECT send_id, channel, to_address, body, status FROM sends WHERE touch = 0")
    assert send[1:] == (replied_to["channel"], replied_to["to_address"], edited, "sent")
    assert set(ledger(driver)) - before == {send[0]}

    # Exactly once: running the reply touch and the review job again sends nothing more.
    assert driver.run(TOUCH, later(4), touch_key(campaign, 0)).success
    assert launch_review(driver, touch_key(campaign, 0), {}, now=later(4)).success
    assert set(ledger(driver)) - before == {send[0]}
    assert _plan(driver, campaign, later(4)) == []

    # Metrics: the answer is counted apart, not as a campaign send.
    assert driver.run(["campaign_metrics"], later(5)).success
    with db() as con:
        metrics = con.execute("SELECT touch, sent, answers_sent FROM campaign_metrics WHERE campaign_id = ? ORDER BY touch", [campaign]).df()
        step_sends = con.execute("SELECT count(*) FROM sends WHERE campaign_id = ? AND touch = 1 AND status = 'sent'", [campaign]).fetchall()[0][0]
    assert metrics["touch"].tolist() == [0, 1]
    assert metrics.loc[0, "sent"] == step_sends and metrics.loc[0, "answers_sent"] == 1 and pd.isna(metrics.loc[1, "answers_sent"])


def test_auto_mode_answers_are_approved_and_sent_by_the_reply_touch_run(launched, driver, instance, db):
    campaign, replied_to = launched("auto")
    _land([_reply("SMlead2", replied_to["channel"], replied_to["to_address"], "Yes, let's talk next week", later(2))])
    ingest_landed(driver, instance, later(2.1))
    due = _plan(driver, campaign, later(2.2))
    assert due == [touch_key(campaign, 0)] and parse_touch_key(due[0]) == (campaign, 0)
    assert driver.run(TOUCH, later(2.2), due[0]).success
    (draft_id, body), = _rows(db, "SELECT draft_id, body FROM drafts WHERE touch = 0")
    assert _rows(db, f"SELECT decision, mode, reviewer, final_body FROM approvals WHERE draft_id = '{draft_id}'") == [
        ("approved", "auto", "auto", body)]
    assert _rows(db, "SELECT channel, to_address, body, status FROM sends WHERE touch = 0") == [
        (replied_to["channel"], replied_to["to_address"], body, "sent")]
    assert _plan(driver, campaign, later(3)) == []
    # Hand decisions on an auto campaign are refused, for answers as for steps.
    assert not launch_review(driver, due[0], {"reviewer": "dana", "approve": [draft_id]}, now=later(3)).success


def test_an_opted_out_lead_never_gets_its_answer(launched, driver, instance, db):
    campaign, replied_to = launched("manual")
    _land([_reply("SMq1", replied_to["channel"], replied_to["to_address"], "Which cities do you cover?", later(2))])
    cursor = ingest_landed(driver, instance, later(2.1))
    assert _plan(driver, campaign, later(2.1)) == [touch_key(campaign, 0)]
    assert driver.run(TOUCH, later(2.1), touch_key(campaign, 0)).success
    (answer_id,), = _rows(db, "SELECT draft_id FROM drafts WHERE touch = 0")
    assert _plan(driver, campaign, later(2.2)) == []  # opens the reply touch for reviewers; nothing to run yet
    _land([_reply("SMq2", replied_to["channel"], replied_to["to_address"], "stop!!", later(2.5))])
    ingest_landed(driver, instance, later(2.6), cursor)
    assert _plan(driver, campaign, later(2.6)) == []  # an opt-out is not answered: the reply touch has nothing to draft
    assert driver.run(TOUCH, later(2.6), touch_key(campaign, 0)).success
    assert launch_review(driver, touch_key(campaign, 0), {"reviewer": "dana", "approve": [answer_id]}, now=later(3)).success
    assert _rows(db, "SELECT status FROM sends WHERE touch = 0") == [("suppressed",)]
    assert _rows(db, "SELECT count(*) FROM drafts WHERE touch = 0") == [(1,)]  # no answer to the opt-out


KEY = "re_answers_key"


def test_email_answers_thread_under_the_leads_message(workdir, driver, instance, db, httpserver: HTTPServer):
    add_campaign(instance, "demo_drip")
    ours = "<snd_cleo_mail@routewise.example>"
    with db() as con:
        seed_campaign(con, workdir, reply_mode="ai")  # approval: auto
        seed_leads(con, leads=(CLEO,))
        seed_sends(con, [send_row("snd_cleo_mail", CLEO, "email", provider="resend", message_id=ours)])
    theirs = "<CAF=cleo-reply-1@mail.example.com>"
    _land([{**_reply("rpl_cleo", "email", "cleo@example.com", "Sounds good, how does billing work?", later(2), "imap",
                     refs=[ours]), "message_id": theirs}])
    ingest_landed(driver, instance, later(2.1))
    assert _rows(db, "SELECT reply_id, send_id, attribution, message_id FROM replies") == [("rpl_cleo", "snd_cleo_mail", "thread", theirs)]

    posted: list[tuple[dict, dict]] = []

    def resend(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        posted.append((dict(request.headers), json.loads(request.get_data())))
        return Response(json.dumps({"id": "em_answer_1"}), 200, content_type="application/json")

    httpserver.expect_request("/emails", method="POST").respond_with_handler(resend)
    driver.base["channels"] = ChannelService(resend_api_key=KEY, resend_base_url=httpserver.url_for(""),
                                             offline_ledger_dir=str(workdir / "offline_ledger"))
    assert _plan(driver, "demo_drip", later(2.2)) == ["demo_drip.reply"]
    assert driver.run(TOUCH, later(2.2), "demo_drip.reply").success
    (headers, payload), = posted
    (send_id, body), = _rows(db, "SELECT send_id, body FROM sends WHERE touch = 0 AND status = 'sent'")
    assert headers["Idempotency-Key"] == send_id
    assert payload["to"] == ["cleo@example.com"] and payload["subject"] == "Re: Hello" and payload["text"] == body
    assert payload["headers"]["In-Reply-To"] == theirs
    assert payload["headers"]["References"] == f"{ours} {theirs}"
