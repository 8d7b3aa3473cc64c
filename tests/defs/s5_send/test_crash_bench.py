"""The crash bench in small: sending runs SIGKILLed at random points, against local Resend and Twilio fakes.

Two kill points per provider (a random instant, the k-th accepted message, the k-th reconciliation
request, inside a step retry; recovery by a new run or a Dagster re-execution from failure), with
victims forked from the bench's warmed-up zygote; the providers' ledgers must then hold every queued
message exactly once, and the `sends` rows their ids. `python -m bench.crash_send` runs the same at scale.
"""

from __future__ import annotations

import threading
from datetime import UTC

from bench.crash_send import SIM_NOW, FakeProviders, run, serve


def test_sending_runs_killed_at_random_points_deliver_every_message_exactly_once(tmp_path):
    lines: list[str] = []
    tally = run(kills=6, messages=12, channels=["email", "sms", "whatsapp"], seed=5, kills_per_scenario=2, root=tmp_path,
                report=lines.append)
    assert tally.kills == 6, lines  # only runs that were actually killed count
    assert {label.split(":")[0] for label in tally.kill_points} == {"email", "sms", "whatsapp"}
    assert tally.runs > tally.kills  # every scenario ends with a run that completes the touch
    assert (tally.duplicates, tally.losses, tally.mismatches) == (0, 0, 0), tally.failures


def test_the_fake_resend_answers_a_repeated_key_with_the_first_id_and_refuses_another_payload():
    fake = FakeProviders()
    first = fake.resend_send("snd_1", {"to": ["a@example.com"], "text": "hi"})
    again = fake.resend_send("snd_1", {"to": ["a@example.com"], "text": "hi"})
    other = fake.resend_send("snd_1", {"to": ["a@example.com"], "text": "changed"})
    assert first == again and first[0] == 200
    assert other[0] == 409 and other[1]["name"] == "invalid_idempotent_request"
    assert [a["key"] for a in fake.accepted] == ["snd_1"]
    assert fake.requests == {"accept": 1, "lookup": 2}


def test_the_fake_twilio_lists_a_recipients_messages_newest_first_in_pages():
    fake = FakeProviders()
    for i in range(3):
        fake.twilio_create({"To": "+34610000001", "Body": f"message {i}", "MessagingServiceSid": "MG1"})
    fake.twilio_create({"To": "whatsapp:+34610000002", "ContentSid": "HX1", "ContentVariables": '{"1": "Ana", "2": "Acme"}'})
    status, first = fake.twilio_list("/x/Messages.json", {"To": "+34610000001", "PageSize": "2"})
    _, second = fake.twilio_list("/x/Messages.json", {"To": "+34610000001", "PageSize": "2", "Page": "1"})
    assert status == 200 and [m["body"] for m in first["messages"]] == ["message 2", "message 1"] and first["next_page_uri"]
    assert [m["body"] for m in second["messages"]] == ["message 0"] and second["next_page_uri"] is None
    _, whatsapp = fake.twilio_list("/x/Messages.json", {"To": "whatsapp:+34610000002"})
    assert "Ana" in whatsapp["messages"][0]["body"] and "Acme" in whatsapp["messages"][0]["body"]  # a template, rendered
    assert fake.now() >= SIM_NOW.replace(tzinfo=UTC)


def test_the_fake_servers_speak_http_for_the_sdks():
    import resend

    from outbound_pipeline.providers.email_resend import use_resend_sdk

    fake = FakeProviders()
    base, stop = serve(fake)
    try:
        with use_resend_sdk("re_key", base):
            sent = resend.Emails.send({"from": "a@x.example", "to": ["b@y.example"], "subject": "s", "text": "t"}, {"idempotency_key": "k1"})
            fetched = resend.Emails.get(sent["id"])
        assert fetched["id"] == sent["id"] and fetched["to"] == ["b@y.example"]
    finally:
        stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("Thread") and not t.daemon]
