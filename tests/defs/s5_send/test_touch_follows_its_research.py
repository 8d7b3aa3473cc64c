"""A launch's first touch end to end beside its research: compose follows research, review follows compose and
sending follows review, each as one run started together, every lead sent once by the one send run."""

from __future__ import annotations

import threading
import time

from outbound_pipeline.defs.s3_compose.jobs import FOLLOW_RESEARCH
from outbound_pipeline.defs.s4_review.jobs import FOLLOW_COMPOSE
from outbound_pipeline.defs.s5_send.jobs import FOLLOW_REVIEW
from outbound_pipeline.runner import Driver
from outbound_pipeline.store import research as research_store
from tests.conftest import MONDAY_MORNING
from tests.defs.following_helpers import first_touch, on_disk_driver, research_in_batches


def _metadata(result, node: str, key: str) -> int:
    return int(result.asset_materializations_for_node(node)[0].metadata[key].value)


def test_review_and_send_runs_started_with_compose_take_up_each_lead_as_it_is_drafted(workdir, db):
    driver, instance = on_disk_driver(workdir)
    key = first_touch(driver, instance, "demo_drip")  # approval: auto
    with db() as con:
        leads = research_store.recipients_without_research(con, "demo_drip")
    results: dict[str, object] = {}
    ended: dict[str, float] = {}

    def research_in_five_batches() -> None:  # the research stage, storing what it found every 0.4 s
        ended["research"] = research_in_batches(db, "demo_drip", leads, 5, 0.4)[-1]

    def run(name: str, selection: list[str], config: dict) -> None:
        results[name] = driver.run(selection, MONDAY_MORNING, key, run_config=config)
        ended[name] = time.monotonic()

    stages = [threading.Thread(target=research_in_five_batches),
              threading.Thread(target=run, args=("compose", ["drafts", "recipient_steps"], FOLLOW_RESEARCH)),
              threading.Thread(target=run, args=("review", ["approvals"], FOLLOW_COMPOSE)),
              threading.Thread(target=run, args=("send", ["sends"], FOLLOW_REVIEW))]
    for stage in stages:
        stage.start()
    for stage in stages:
        stage.join()

    assert _metadata(results["compose"], "drafts", "drafted") == len(leads)
    assert _metadata(results["review"], "approvals", "decisions_recorded") == len(leads)  # auto mode: each draft approved as stored
    assert _metadata(results["send"], "sends", "queued_while_following") == len(leads)
    sent, failed, deferred = (_metadata(results["send"], "sends", k) for k in ("sent", "failed", "deferred_by_window"))
    assert sent > len(leads) / 2 and sent + failed + deferred == len(leads)  # by the one run started with compose; the rest
    # wait for their recipients' sending windows (Monday 09:00 UTC is night for some), as with a send run after review
    assert ended["review"] - ended["compose"] < 5 and ended["send"] - ended["review"] < 5  # each ended soon after the stage before
    with db() as con:
        rows = dict(con.execute("SELECT status, count(*) FROM sends WHERE touch = 1 GROUP BY status").fetchall())
        once = con.execute("SELECT count(*) = count(DISTINCT lead_id) FROM sends WHERE touch = 1").fetchone()
        approved = con.execute("SELECT count(*) FROM approvals WHERE decision = 'approved'").fetchone()
    assert rows == {"sent": sent, "failed": failed, "pending": deferred} and once == (True,)
    assert approved is not None and approved[0] == len(leads)


def test_a_send_run_following_nothing_sends_what_is_approved_and_stops_after_the_start_grace(driver: Driver, instance, db, monkeypatch):
    import outbound_pipeline.engine.following as following

    monkeypatch.setattr(following, "START_GRACE_S", 0.5)
    key = first_touch(driver, instance, "demo_drip")
    started = time.monotonic()
    result = driver.run(["sends"], MONDAY_MORNING, key, run_config=FOLLOW_REVIEW)
    assert _metadata(result, "sends", "sent") == 0 and time.monotonic() - started < 10


def test_a_run_whose_review_step_is_over_is_not_waited_for(driver: Driver, instance, db, monkeypatch):
    """Review done in a run that goes on (here: to a following send step in the same run, as a `review_job` run waits for
    the `sends` pool a follower holds) is not review still running: the follower does not wait for that run to end."""
    import outbound_pipeline.engine.following as following

    monkeypatch.setattr(following, "START_GRACE_S", 0.5)
    key = first_touch(driver, instance, "demo_drip")
    started = time.monotonic()
    result = driver.run(["approvals", "sends"], MONDAY_MORNING, key, run_config=FOLLOW_REVIEW)
    assert result.success and time.monotonic() - started < 10  # the run's own approvals step is over: no waiting on itself


def test_in_manual_mode_the_following_send_run_sends_what_a_person_approves_and_nothing_else(workdir, db):
    from outbound_pipeline.domain.review import ReviewRequest
    from outbound_pipeline.engine.review_queue import record_decisions
    from tests.defs.s7_cadence.helpers import write_campaign

    driver, instance = on_disk_driver(workdir)
    write_campaign(workdir, "handpicked", type="oneshot", approval="manual", steps=[{"name": "intro", "intent": "introduce"}])
    key = first_touch(driver, instance, "handpicked")
    with db() as con:
        leads = research_store.recipients_without_research(con, "handpicked")
    results: dict[str, object] = {}
    composing = threading.Event()
    composing.set()

    def research_in_three_batches() -> None:
        research_in_batches(db, "handpicked", leads, 3, 0.5)

    def person_approving_every_other_draft() -> None:  # in the inbox, while the touch is drafted
        while composing.is_set():
            time.sleep(0.3)
            with db() as con:
                waiting = con.execute("SELECT draft_id FROM drafts d WHERE touch = 1 AND NOT EXISTS "
                                      "(SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id) ORDER BY draft_id").fetchall()
                chosen = [row[0] for row in waiting[::2]]
                if chosen:
                    record_decisions(con, "handpicked", 1, ReviewRequest(reviewer="ana", approve=chosen), MONDAY_MORNING)

    def run(name: str, selection: list[str], config: dict) -> None:
        results[name] = driver.run(selection, MONDAY_MORNING, key, run_config=config)
        if name == "compose":
            composing.clear()

    threads = [threading.Thread(target=research_in_three_batches), threading.Thread(target=person_approving_every_other_draft),
               threading.Thread(target=run, args=("compose", ["drafts", "recipient_steps"], FOLLOW_RESEARCH)),
               threading.Thread(target=run, args=("send", ["sends"], FOLLOW_REVIEW))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    with db() as con:
        approved = {row[0] for row in con.execute("SELECT draft_id FROM approvals WHERE decision = 'approved'").fetchall()}
        drafted = {row[0] for row in con.execute("SELECT draft_id FROM drafts WHERE touch = 1").fetchall()}
        sent = {row[0] for row in con.execute("SELECT draft_id FROM sends WHERE touch = 1 AND status = 'sent'").fetchall()}
        queued = {row[0] for row in con.execute("SELECT draft_id FROM sends WHERE touch = 1").fetchall()}
    assert approved and approved < drafted  # a person chose some of the drafts
    assert sent and queued <= approved  # what went out was approved, while the touch was being drafted
    assert _metadata(results["send"], "sends", "queued_while_following") == len(queued)
