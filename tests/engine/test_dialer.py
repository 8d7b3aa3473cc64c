"""The dial step against a local Twilio Calls API and signed callbacks landed by the receiver.

Each test launches real voice campaigns (the launch runs), then drives `engine.dialer.dial` at chosen times: calls
are placed through the official SDK, results come back as Twilio's callbacks through the receiver (or its Calls
resource when callbacks never come), and the tables say what happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from outbound_pipeline.defs.voice_resources import voice_dirs
from outbound_pipeline.engine.dialer import DialConfig, DialStats, dial
from outbound_pipeline.runner import LAUNCH, TRACK, Driver
from outbound_pipeline.store import calls as store
from outbound_pipeline.store import warehouse
from tests.conftest import add_campaign
from tests.voice_support import FakeTwilioVoice, amd, callback, converse, receiver, twilio_voice

START = datetime(2026, 1, 5, 15, 0)  # Monday: 10:00 in New York, 07:00 in Los Angeles
NY, LA = "America/New_York", "America/Los_Angeles"


def campaign_yaml(name: str, *, agent: str = "ava", agent_max: int = 0, **voice: object) -> str:
    settings = {"phone_number": '"+12125550199"', "max_concurrent": 1, "retry_attempts": 0, "retry_delay_minutes": 30,
                "ring_timeout_s": 25, **voice}
    lines = "\n".join(f"  {k}: {v}" for k, v in settings.items())
    return f"""name: {name}
goal: Book a 15-minute call with operations leaders about route planning
type: oneshot
from_name: Routewise
audience: {{lead_list: {name}.csv}}
voice:
{lines}
  calling_hours: {{start: "09:00", end: "20:00", days: [mon, tue, wed, thu, fri, sat, sun]}}
steps:
  - name: call
    channels: [voice]
    cta: a 15-minute call next week
    agent: {{name: {agent}, opening_line: "Hi {{{{first_name}}}}, this is Ava from {{{{company.name}}}}.", voicemail_message: "Hi {{{{first_name}}}}, please call us back.", max_concurrent_calls: {agent_max}}}
"""


class Voice:
    """Launch voice campaigns and dial them, with the fake Twilio and the receiver."""

    def __init__(self, workdir: Path, driver: Driver, instance: dg.DagsterInstance, server: HTTPServer):
        self.workdir, self.driver, self.instance = workdir, driver, instance
        self.twilio = FakeTwilioVoice(server)
        self.dialer = twilio_voice(server)
        self.client = receiver(workdir / "landing", dialer=self.dialer)
        voice_landing, contexts = voice_dirs(workdir / "landing")
        self.config = DialConfig(voice_landing_dir=voice_landing, contexts_dir=contexts, main_landing_dir=workdir / "landing",
                                 data_dir=workdir, org_limit=10)
        self.seq = 0

    def launch(self, name: str, contacts: list[tuple[str, str, str]], **settings: object) -> None:
        rows = "\n".join(f"{phone},{person},{zone}" for phone, person, zone in contacts)
        (self.workdir / f"{name}.csv").write_text(f"phone_number,name,timezone\n{rows}\n")
        (self.workdir / "campaigns" / f"{name}.yaml").write_text(campaign_yaml(name, **settings))  # type: ignore[arg-type]
        add_campaign(self.instance, name)
        self.driver.run(LAUNCH, START, name)

    def dial(self, at: datetime, org_limit: int | None = None) -> DialStats:
        config = self.config if org_limit is None else DialConfig(**{**self.config.__dict__, "org_limit": org_limit})
        return dial(lambda: warehouse.connect(self.workdir / "outbound.duckdb"), self.dialer, config, at)

    def status(self, to: str, status: str, nth: int = 1, **extra: str) -> None:
        self.seq += 1
        response = callback(self.client, self.twilio.call_id_for(to, nth), self.twilio.sid_for(to, nth), status, self.seq, **extra)
        assert response.status_code == 200

    def contacts(self, campaign: str) -> dict[str, dict]:
        with warehouse.connect(self.workdir / "outbound.duckdb") as con:
            return {row["phone"]: row for row in store.call_contacts(con, campaign)}

    def stats(self, campaign: str) -> dict:
        with warehouse.connect(self.workdir / "outbound.duckdb") as con:
            return store.call_stats(con, campaign)


@pytest.fixture
def voice(workdir: Path, driver: Driver, instance: dg.DagsterInstance, httpserver: HTTPServer) -> Voice:
    return Voice(workdir, driver, instance, httpserver)


MARIA = ("+12125550101", "Maria Lopez", NY)
JAMES = ("+12125550102", "James Carter", NY)
KEVIN = ("+14155550108", "Kevin Wu", LA)


def test_a_person_answers_and_the_agent_reaches_an_outcome(voice: Voice):
    voice.launch("intro_calls", [MARIA], retry_attempts=2)
    stats = voice.dial(START)
    assert stats.placed == 1 and stats.queued == 1
    [form] = voice.twilio.created
    call_id = voice.twilio.call_id_for(MARIA[0])
    assert form["To"] == MARIA[0] and form["From"] == "+12125550199" and form["Timeout"] == "25"
    assert form["Url"] == f"https://hooks.example.com/voice/twiml?call_id={call_id}"
    assert form["StatusCallback"] == f"https://hooks.example.com/voice/status?call_id={call_id}"
    assert form["MachineDetection"] == "DetectMessageEnd" and form["AsyncAmd"] == "true"
    assert form["AsyncAmdStatusCallback"] == f"https://hooks.example.com/voice/amd?call_id={call_id}"
    assert voice.contacts("intro_calls")[MARIA[0]]["status"] == "calling"

    sid = voice.twilio.sid_for(MARIA[0])
    voice.status(MARIA[0], "ringing")
    voice.status(MARIA[0], "in-progress")
    assert amd(voice.client, call_id, sid, "human").status_code == 200
    messages = converse(voice.client, call_id, sid, ["Hello?", "Yes, sounds good, go ahead and book it."])
    assert messages[0]["token"].startswith("The ")  # the agent's pitch, streamed
    voice.status(MARIA[0], "completed", CallDuration="95", AnsweredBy="human")
    stats = voice.dial(START + timedelta(minutes=3))
    assert stats.ended == 1 and stats.turns == 5 and stats.completed_campaigns == ["intro_calls"]
    maria = voice.contacts("intro_calls")[MARIA[0]]
    assert (maria["status"], maria["attempts"], maria["duration_seconds"], maria["outcome"]) == ("completed", 1, 95, "interested")
    report = voice.stats("intro_calls")
    assert report["contacts"] == {"total": 1, "pending": 0, "calling": 0, "completed": 1, "failed": 0, "no_answer": 0, "voicemail": 0}
    assert report["progress"] == 100 and report["campaign_status"] == "completed"
    assert report["call_metrics"]["billed_minutes"] == 2 and report["call_metrics"]["cost_usd"] == pytest.approx(0.026)
    assert report["outcomes"] == {"interested": 1}
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        turns = store.transcript(con, call_id)
    assert turns["role"].tolist() == ["agent", "callee", "agent", "callee", "agent"]
    assert turns["text"].iloc[0] == "Hi Maria, this is Ava from Routewise."


def test_voicemail_after_the_beep_is_left_and_never_retried(voice: Voice):
    voice.launch("vm_calls", [MARIA], retry_attempts=2)
    voice.dial(START)
    call_id, sid = voice.twilio.call_id_for(MARIA[0]), voice.twilio.sid_for(MARIA[0])
    voice.status(MARIA[0], "in-progress")
    assert amd(voice.client, call_id, sid, "machine_end_beep").status_code == 200
    [(updated, form)] = voice.twilio.updates
    assert updated == sid and "<Say>Hi Maria, please call us back.</Say>" in form["Twiml"]
    voice.status(MARIA[0], "completed", CallDuration="31", AnsweredBy="machine_end_beep")
    voice.dial(START + timedelta(minutes=2))
    maria = voice.contacts("vm_calls")[MARIA[0]]
    assert maria["status"] == "voicemail" and maria["next_attempt_at"] is None
    for minutes in (40, 200):
        voice.dial(START + timedelta(minutes=minutes))
    assert len(voice.twilio.created) == 1
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        [[left, billed]] = con.execute("SELECT voicemail_left, billed_minutes FROM calls").fetchall()
    assert left is True and billed == 1


def test_busy_and_failed_calls_are_retried_after_the_delay(voice: Voice):
    voice.launch("retry_calls", [MARIA, JAMES], max_concurrent=2, retry_attempts=1, retry_delay_minutes=30)
    voice.dial(START)
    voice.status(MARIA[0], "busy")
    voice.status(JAMES[0], "failed", ErrorCode="31005")
    voice.dial(START + timedelta(minutes=1))
    contacts = voice.contacts("retry_calls")
    assert {c["status"] for c in contacts.values()} == {"failed"}
    assert contacts[JAMES[0]]["error_message"] == "failed (31005)"
    assert contacts[MARIA[0]]["next_attempt_at"] == (START + timedelta(minutes=31)).isoformat()
    voice.dial(START + timedelta(minutes=20))
    assert len(voice.twilio.created) == 2  # the delay has not passed
    voice.dial(START + timedelta(minutes=31))
    assert len(voice.twilio.created) == 4 and {c["attempts"] for c in voice.contacts("retry_calls").values()} == {2}
    voice.status(MARIA[0], "busy", nth=2)
    voice.status(JAMES[0], "busy", nth=2)
    voice.dial(START + timedelta(minutes=32))
    voice.dial(START + timedelta(hours=3))
    assert len(voice.twilio.created) == 4  # one retry each, as configured
    assert voice.stats("retry_calls")["campaign_status"] == "completed"


def test_no_completion_within_five_minutes_is_no_answer_and_retried(voice: Voice):
    voice.launch("silent_calls", [MARIA], retry_attempts=1, retry_delay_minutes=30)
    voice.dial(START)
    voice.dial(START + timedelta(minutes=4, seconds=59))  # Twilio's Calls resource still says queued
    assert voice.contacts("silent_calls")[MARIA[0]]["status"] == "calling"
    stats = voice.dial(START + timedelta(minutes=5))
    assert stats.timed_out == 1
    maria = voice.contacts("silent_calls")[MARIA[0]]
    assert maria["status"] == "no_answer" and maria["error_message"] == "no completion within 5 minutes"
    voice.dial(START + timedelta(minutes=35))
    assert len(voice.twilio.created) == 2


def test_reconciliation_reads_the_call_when_its_callback_is_lost(voice: Voice):
    voice.launch("lost_calls", [MARIA])
    voice.dial(START)
    voice.twilio.set(voice.twilio.sid_for(MARIA[0]), status="no-answer", duration="0")
    voice.dial(START + timedelta(minutes=1))
    assert voice.contacts("lost_calls")[MARIA[0]]["status"] == "no_answer"


def test_never_more_than_the_effective_limit_in_flight_with_three_campaigns(voice: Voice):
    people = [(f"+1212555{n:04d}", f"Person {n}", NY) for n in range(200, 224)]
    voice.launch("camp_a", people[0:8], max_concurrent=3, agent="ava", agent_max=4)
    voice.launch("camp_b", people[8:16], max_concurrent=3, agent="ava", agent_max=4)
    voice.launch("camp_c", people[16:24], max_concurrent=2, agent="max")
    now, peak = START, 0
    for _ in range(12):
        stats = voice.dial(now, org_limit=6)
        flying = stats.in_flight
        peak = max(peak, sum(flying.values()))
        assert sum(flying.values()) <= 6
        assert flying.get("camp_a", 0) <= 3 and flying.get("camp_b", 0) <= 3 and flying.get("camp_c", 0) <= 2
        assert flying.get("camp_a", 0) + flying.get("camp_b", 0) <= 4  # agent ava's own cap across its campaigns
        for sid, call in list(voice.twilio.calls.items())[:]:
            if call["status"] == "queued":
                voice.twilio.set(sid, status="completed", duration="40", answered_by="human")
                break  # one call ends per pass: slots free up slowly
        now += timedelta(minutes=1)
    assert peak == 6
    assert len({f["To"] for f in voice.twilio.created}) == len(voice.twilio.created)  # nobody called twice at once


def test_caller_ids_rotate_through_the_pool_and_unknown_entries_are_skipped(voice: Voice):
    voice.launch("pool_calls", [MARIA, JAMES, ("+12125550103", "Aisha Khan", NY)], max_concurrent=3,
                 number_pool='["+12125550197", "uuid-of-phone", "+13125550198"]')
    stats = voice.dial(START)
    assert [f["From"] for f in voice.twilio.created] == ["+12125550197", "+13125550198", "+12125550197"]
    assert stats.warnings == ["pool_calls: number pool entries skipped (not one of our E.164 numbers): uuid-of-phone"]


def test_calling_hours_are_each_contacts_own(voice: Voice):
    voice.launch("zone_calls", [KEVIN, MARIA], max_concurrent=2)
    voice.dial(START)  # 10:00 in New York, 07:00 in Los Angeles
    assert [f["To"] for f in voice.twilio.created] == [MARIA[0]]
    assert voice.contacts("zone_calls")[KEVIN[0]]["status"] == "pending"  # waiting, not skipped
    voice.dial(START + timedelta(hours=2))  # 09:00 in Los Angeles
    assert [f["To"] for f in voice.twilio.created] == [MARIA[0], KEVIN[0]]


def test_do_not_call_suppresses_the_contact_on_every_channel(voice: Voice):
    voice.launch("dnc_calls", [MARIA])
    voice.dial(START)
    call_id, sid = voice.twilio.call_id_for(MARIA[0]), voice.twilio.sid_for(MARIA[0])
    messages = converse(voice.client, call_id, sid, ["Please stop calling and remove my number."])
    assert messages[-1]["type"] == "end"
    voice.status(MARIA[0], "completed", CallDuration="12", AnsweredBy="human")
    stats = voice.dial(START + timedelta(minutes=1))
    assert stats.opt_outs == 1
    landed = {"ops": {"track": {"config": {"count": 10}}}}  # the landing sensor's batch: the opt-out the dial step landed
    voice.driver.run(TRACK, START + timedelta(minutes=2), run_config=landed)  # the suppressions' one writer
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        rows = con.execute("SELECT s.channel, s.reason, l.status FROM suppressions s JOIN leads l USING (lead_id)").fetchall()
    assert rows == [("all", "opt_out", "opted_out")]


def test_contacts_waiting_for_their_morning_do_not_block_the_others(voice: Voice):
    west = [(f"+1415555{n:04d}", f"West {n}", LA) for n in range(300, 306)]
    voice.launch("west_first", [*west, MARIA])  # the New York contact is last in the list
    voice.dial(START, org_limit=1)
    assert [f["To"] for f in voice.twilio.created] == [MARIA[0]]


def test_turns_are_stored_while_the_call_is_live_and_strangers_are_ignored(voice: Voice):
    voice.launch("live_calls", [MARIA])
    voice.dial(START)
    call_id, sid = voice.twilio.call_id_for(MARIA[0]), voice.twilio.sid_for(MARIA[0])
    voice.status(MARIA[0], "in-progress")
    converse(voice.client, call_id, sid, ["Hello?", "No thanks, we're not interested."])
    converse(voice.client, "call_ffffffffffffffff", sid, [])  # a session for a call this database never placed
    stats = voice.dial(START + timedelta(minutes=1))
    assert stats.turns == 5 and stats.ended == 0
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        [[outcome, status]] = con.execute("SELECT outcome, status FROM calls").fetchall()
        assert con.execute("SELECT count(DISTINCT call_id) FROM call_turns").fetchall() == [(1,)]
    assert (outcome, status) == ("not_interested", "calling")  # the outcome is known; the call ends with Twilio's completed


def test_a_paused_campaign_places_no_new_calls_but_hears_from_those_in_flight(voice: Voice):
    from outbound_pipeline.store.campaigns import transition

    voice.launch("paused_calls", [MARIA, JAMES])
    voice.dial(START)
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        transition(con, "paused_calls", "paused", "lunch", "test", START)
    voice.status(MARIA[0], "completed", CallDuration="20", AnsweredBy="human")
    voice.dial(START + timedelta(minutes=1))
    assert voice.contacts("paused_calls")[MARIA[0]]["status"] == "completed"
    assert [f["To"] for f in voice.twilio.created] == [MARIA[0]]


def test_nothing_is_dialled_before_scheduled_at(voice: Voice):
    voice.launch("later_calls", [MARIA], scheduled_at="2026-01-05T16:00:00")
    voice.dial(START)
    assert voice.twilio.created == [] and voice.contacts("later_calls")[MARIA[0]]["status"] == "pending"
    voice.dial(START + timedelta(hours=1))
    assert len(voice.twilio.created) == 1


def test_a_call_twilio_refuses_fails_with_its_reason_and_is_retried(voice: Voice):
    voice.twilio.refuse[MARIA[0]] = (400, 21215, "Geo permission configuration is not permitting call")
    voice.launch("refused_calls", [MARIA], retry_attempts=1, retry_delay_minutes=30)
    stats = voice.dial(START)
    assert stats.refused == 1 and stats.placed == 0
    maria = voice.contacts("refused_calls")[MARIA[0]]
    assert maria["status"] == "failed" and maria["error_message"].startswith("21215: ") and "Geo permission" in maria["error_message"]
    assert maria["next_attempt_at"] == (START + timedelta(minutes=30)).isoformat()
    del voice.twilio.refuse[MARIA[0]]
    voice.dial(START + timedelta(minutes=30))
    assert [f["To"] for f in voice.twilio.created] == [MARIA[0]] and voice.contacts("refused_calls")[MARIA[0]]["attempts"] == 2


def test_a_call_whose_answer_was_lost_is_found_not_placed_twice(voice: Voice):
    voice.twilio.drop_answers = 1  # Twilio creates the call; its answer never arrives
    voice.launch("lost_answer", [MARIA], retry_attempts=2)
    stats = voice.dial(START)
    assert (stats.placed, stats.refused, stats.uncertain) == (0, 0, 1)
    assert voice.contacts("lost_answer")[MARIA[0]]["status"] == "calling"
    voice.twilio.set(voice.twilio.sid_for(MARIA[0]), status="completed", answered_by="human", duration="70")
    voice.dial(START + timedelta(minutes=1))  # found in Twilio's Calls list by its numbers
    maria = voice.contacts("lost_answer")[MARIA[0]]
    assert (maria["status"], maria["duration_seconds"], maria["attempts"]) == ("completed", 70, 1)
    assert len(voice.twilio.created) == 1
    with warehouse.connect(voice.workdir / "outbound.duckdb") as con:
        assert con.execute("SELECT provider_sid FROM calls").fetchall() == [(voice.twilio.sid_for(MARIA[0]),)]
