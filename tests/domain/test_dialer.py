"""The dialer's rules: limits across campaigns, FIFO, calling hours across zones, results, retries, caller IDs, cost."""

from datetime import datetime, timedelta

import pytest

from outbound_pipeline.domain import dialer as rules
from outbound_pipeline.domain.loader import CampaignSpecError, parse_campaign
from outbound_pipeline.domain.spec import SendingWindow

NOW = datetime(2026, 1, 5, 15, 0)  # Monday 10:00 in New York, 07:00 in Los Angeles, 16:00 in Madrid


def candidates(campaign: str, n: int, timezone: str | None = None) -> list[rules.Candidate]:
    return [rules.Candidate(campaign, f"{campaign}-{i}", NOW - timedelta(minutes=n - i), i, timezone) for i in range(n)]


def test_effective_limit_is_the_smallest_of_campaign_org_and_agent():
    assert rules.effective_limit(5, 10, 0) == 5  # agent 0: no cap of its own
    assert rules.effective_limit(5, 3, 0) == 3
    assert rules.effective_limit(5, 10, 2) == 2
    assert rules.effective_limit(1) == 1


def test_three_campaigns_never_pass_any_limit():
    loads = [
        rules.CampaignLoad("a", max_concurrent=4, agent="ava", agent_max=5, in_flight=1, ready=candidates("a", 10)),
        rules.CampaignLoad("b", max_concurrent=4, agent="ava", agent_max=5, in_flight=1, ready=candidates("b", 10)),
        rules.CampaignLoad("c", max_concurrent=6, agent="max", agent_max=0, in_flight=0, ready=candidates("c", 10)),
    ]
    chosen = rules.pick(loads, NOW, org_limit=8)
    per = {c: sum(1 for k in chosen if k.campaign_id == c) for c in "abc"}
    assert len(chosen) + 2 == 8  # the organisation's limit, counting the two in flight
    assert per["a"] + per["b"] + 2 <= 5  # agent ava across both of its campaigns
    assert all(per[c] + load.in_flight <= load.max_concurrent for c, load in zip("abc", loads, strict=True))
    assert per["c"] >= 3  # turns are taken: campaign c is not starved by a and b


def test_pick_is_first_in_first_out_and_waits_for_slots():
    load = rules.CampaignLoad("a", max_concurrent=2, agent="ava", agent_max=0, in_flight=0, ready=list(reversed(candidates("a", 5))))
    assert [k.lead_id for k in rules.pick([load], NOW)] == ["a-0", "a-1"]
    full = rules.CampaignLoad("a", max_concurrent=2, agent="ava", agent_max=0, in_flight=2, ready=candidates("a", 5))
    assert rules.pick([full], NOW) == []


def test_calling_hours_are_the_contacts_own_across_zones():
    hours = SendingWindow(start="09:00", end="20:00", days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    ready = [*candidates("ny", 1, "America/New_York"), *candidates("la", 1, "America/Los_Angeles"),
             *candidates("tokyo", 1, "Asia/Tokyo")]
    load = rules.CampaignLoad("a", max_concurrent=5, agent="ava", agent_max=0, in_flight=0, ready=ready, calling_hours=hours)
    assert [k.lead_id for k in rules.pick([load], NOW)] == ["ny-0"]  # 10:00 in New York; 07:00 in LA; midnight in Tokyo
    later = NOW + timedelta(hours=2)  # 09:00 in Los Angeles: the LA contact waited, it was not skipped
    assert {k.lead_id for k in rules.pick([load], later)} == {"ny-0", "la-0"}


@pytest.mark.parametrize(("status", "answered_by", "result"), [
    ("completed", "human", "completed"), ("completed", None, "completed"), ("completed", "unknown", "completed"),
    ("completed", "machine_end_beep", "voicemail"), ("completed", "machine_end_silence", "voicemail"),
    ("completed", "fax", "failed"), ("busy", None, "failed"), ("failed", None, "failed"), ("canceled", None, "failed"),
    ("no-answer", None, "no_answer"), ("ringing", None, None), ("in-progress", "human", None), ("queued", None, None),
])
def test_call_results(status, answered_by, result):
    assert rules.call_result(status, answered_by) == result


def test_retries_after_the_delay_only_for_failed_and_no_answer_while_attempts_remain():
    ended = NOW
    assert rules.next_attempt("failed", 1, 2, ended, 30) == ended + timedelta(minutes=30)
    assert rules.next_attempt("no_answer", 2, 2, ended, 30) == ended + timedelta(minutes=30)
    assert rules.next_attempt("no_answer", 3, 2, ended, 30) is None  # 1 call + 2 retries done
    assert rules.next_attempt("failed", 1, 0, ended, 30) is None  # retries off (the default)
    assert rules.next_attempt("completed", 1, 5, ended, 30) is None
    assert rules.next_attempt("voicemail", 1, 5, ended, 30) is None


def test_no_completion_timeout():
    placed = NOW - timedelta(minutes=5)
    assert rules.timed_out(placed, answered=False, now=NOW)
    assert not rules.timed_out(placed + timedelta(seconds=1), answered=False, now=NOW)
    assert not rules.timed_out(placed, answered=True, now=NOW)  # a conversation is not cut at five minutes


def test_number_pool_rotates_and_skips_unknown_entries():
    usable, skipped = rules.usable_pool(["+12125550101", "uuid-of-phone", "+13125550102", "+19995550000"],
                                        provisioned=["+12125550101", "+13125550102"])
    assert usable == ["+12125550101", "+13125550102"] and skipped == ["uuid-of-phone", "+19995550000"]
    assert [rules.caller_id(usable, "+10000000000", i) for i in range(4)] == [*usable, *usable]
    assert rules.caller_id([], "+10000000000", 7) == "+10000000000"
    with pytest.raises(ValueError, match="no caller ID"):
        rules.caller_id([], None, 0)


def test_cost_is_per_started_minute():
    assert rules.billed_minutes(0) == 0 and rules.billed_minutes(None) == 0
    assert rules.billed_minutes(1) == 1 and rules.billed_minutes(60) == 1 and rules.billed_minutes(61) == 2
    assert rules.call_cost(61, 0.013) == pytest.approx(0.026)


VOICE = """
name: calls
goal: Book a demo with operations leaders
type: oneshot
audience: {lead_list: contacts.csv}
voice: {phone_number: "+12125550199", max_concurrent: 3, retry_attempts: 2}
steps:
  - name: call
    channels: [voice]
    agent: {name: ava, opening_line: "Hi {{first_name}}", voicemail_message: "Call us back"}
"""


def test_a_voice_campaign_is_accepted_with_its_settings():
    spec = parse_campaign(VOICE)
    assert spec.is_voice and spec.voice is not None and spec.voice.max_concurrent == 3
    assert spec.voice.retry_delay_minutes == 60 and spec.voice.calling_hours.days[-1] == "sun"
    assert spec.steps[0].agent is not None and spec.steps[0].agent.prompt_path == "agents/ava.md"


@pytest.mark.parametrize(("change", "message"), [
    (("channels: [voice]", "channels: [voice, sms]"), r"`channels: \[voice\]` only"),
    (('    agent: {name: ava, opening_line: "Hi {{first_name}}", voicemail_message: "Call us back"}\n', ""), "needs an `agent`"),
    (('voice: {phone_number: "+12125550199", max_concurrent: 3, retry_attempts: 2}\n', ""), "needs its `voice:` settings"),
    (('phone_number: "+12125550199", ', ""), "needs a caller ID"),
    (("max_concurrent: 3", "max_concurrent: 0"), "max_concurrent"),
])
def test_voice_mistakes_are_named(change, message):
    with pytest.raises(CampaignSpecError, match=message):
        parse_campaign(VOICE.replace(*change))
