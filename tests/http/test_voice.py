"""Voice endpoints: signed call callbacks landed, TwiML for answered calls, the voicemail after the beep, and the
ConversationRelay WebSocket holding a conversation to its outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from outbound_pipeline.defs.voice_resources import voice_dirs
from outbound_pipeline.engine.dialer import write_context
from outbound_pipeline.providers.base import CallContext
from outbound_pipeline.store import landing
from tests.voice_support import (
    ACCOUNT,
    PUBLIC,
    TOKEN,
    FakeTwilioVoice,
    amd,
    callback,
    converse,
    receiver,
    relay_signature,
    signed_post,
    twilio_voice,
)

CALL_ID = "call_0123456789abcdef"
SID = "CA" + "1" * 32


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "landing"
    directory.mkdir()
    context = CallContext(call_id=CALL_ID, campaign_id="calls", lead_id="lead_1", attempt=1, agent="ava", system_prompt="Be brief.",
                          opening_line="Hi Maria, this is Ava from Routewise. Is now a good moment?",
                          voicemail_message="Hi Maria, Ava from Routewise here. We'll call again.", goal="Book a demo",
                          cta="a 15-minute call next week", first_name="Maria")
    write_context(voice_dirs(directory)[1], context)
    return directory


def landed(landing_dir: Path) -> list[dict]:
    return landing.read_since(None, voice_dirs(landing_dir)[0])[0]


def test_signed_status_callback_lands_with_its_call_id(landing_dir: Path):
    client = receiver(landing_dir)
    response = callback(client, CALL_ID, SID, "completed", 4, CallDuration="42", AnsweredBy="human")
    assert response.status_code == 200
    [record] = landed(landing_dir)
    assert record["source"] == "twilio_call" and record["query"] == {"call_id": CALL_ID}
    assert record["payload"]["CallStatus"] == "completed" and record["payload"]["CallDuration"] == "42"
    assert landing.read_since(None, landing_dir)[0] == []  # not in the message webhooks' area: the track step never sees it


def test_unsigned_or_forged_callbacks_are_refused_and_nothing_lands(landing_dir: Path):
    client = receiver(landing_dir)
    params = {"CallSid": SID, "AccountSid": ACCOUNT, "CallStatus": "completed"}
    assert client.post(f"/voice/status?call_id={CALL_ID}", data=params).status_code == 403
    assert signed_post(client, f"/voice/status?call_id={CALL_ID}", params, token="someone_else").status_code == 403
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/voice/status?call_id={CALL_ID}", params)
    changed = {**params, "CallStatus": "busy"}  # the body altered after signing
    assert client.post(f"/voice/status?call_id={CALL_ID}", data=changed, headers={"X-Twilio-Signature": signature}).status_code == 403
    assert signed_post(client, "/voice/status?call_id=../../etc", params).status_code == 400
    assert landed(landing_dir) == []


def test_answered_call_is_handed_to_conversation_relay(landing_dir: Path):
    client = receiver(landing_dir)
    response = signed_post(client, f"/voice/twiml?call_id={CALL_ID}", {"CallSid": SID, "CallStatus": "in-progress"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert f'<ConversationRelay url="wss://hooks.example.com/voice/relay?call_id={CALL_ID}"' in response.text
    assert 'welcomeGreeting="Hi Maria, this is Ava from Routewise. Is now a good moment?"' in response.text
    unknown = signed_post(client, "/voice/twiml?call_id=call_ffffffffffffffff", {"CallSid": SID})
    assert "<Hangup" in unknown.text


def test_after_the_beep_the_voicemail_is_left_on_the_live_call(landing_dir: Path, httpserver: HTTPServer):
    twilio = FakeTwilioVoice(httpserver)
    dialer = twilio_voice(httpserver)
    twilio.calls[SID] = {"sid": SID, "to": "+12125550101", "status": "in-progress"}
    client = receiver(landing_dir, dialer=dialer)
    assert amd(client, CALL_ID, SID, "machine_end_beep").status_code == 200
    [(sid, form)] = twilio.updates
    assert sid == SID
    assert "<Say>Hi Maria, Ava from Routewise here. We'll call again.</Say><Hangup" in form["Twiml"]
    assert landed(landing_dir)[0]["payload"]["AnsweredBy"] == "machine_end_beep"
    assert amd(client, CALL_ID, SID, "human").status_code == 200
    assert len(twilio.updates) == 1  # a person gets the agent, not the message


def test_relay_conversation_reaches_an_outcome_and_every_turn_lands(landing_dir: Path):
    client = receiver(landing_dir)
    messages = converse(client, CALL_ID, SID, ["Hello? Who is this?", "Yes, sounds good, book it."])
    tokens = [m for m in messages if m["type"] == "text"]
    assert all(set(m) == {"type", "token", "last"} for m in tokens)
    assert "Would you be open to a 15-minute call next week?" in "".join(m["token"] for m in tokens)
    assert messages[-1]["type"] == "end" and json.loads(messages[-1]["handoffData"])["outcome"] == "interested"
    payloads = [r["payload"] for r in landed(landing_dir)]
    turns = [(p["seq"], p["role"]) for p in payloads if p["kind"] == "turn"]
    assert turns == [(1, "agent"), (2, "callee"), (3, "agent"), (4, "callee"), (5, "agent")]
    assert payloads[0]["text"].startswith("Hi Maria")
    assert [p["outcome"] for p in payloads if p["kind"] == "end"] == ["interested"]


def test_relay_refuses_an_unsigned_handshake(landing_dir: Path):
    client = receiver(landing_dir)
    path = f"/voice/relay?call_id={CALL_ID}"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(path, headers={"X-Twilio-Signature": relay_signature("/other")}):
        pass
    assert landed(landing_dir) == []


def test_relay_records_interruptions_and_digits(landing_dir: Path):
    client = receiver(landing_dir)
    path = f"/voice/relay?call_id={CALL_ID}"
    with client.websocket_connect(path, headers={"X-Twilio-Signature": relay_signature(path)}) as ws:
        ws.send_text(json.dumps({"type": "setup", "callSid": SID, "customParameters": {}}))
        ws.send_text(json.dumps({"type": "interrupt", "utteranceUntilInterrupt": "Hi Maria, this is", "durationUntilInterruptMs": 900}))
        ws.send_text(json.dumps({"type": "dtmf", "digit": "5"}))
        ws.send_text(json.dumps({"type": "prompt", "voicePrompt": "Please stop calling me.", "last": True}))
        while json.loads(ws.receive_text())["type"] != "end":
            pass
    texts = [r["payload"].get("text") for r in landed(landing_dir)]
    assert "interrupted; the callee heard: Hi Maria, this is" in texts and "pressed 5" in texts
    assert [r["payload"]["outcome"] for r in landed(landing_dir) if r["payload"]["kind"] == "end"] == ["do_not_call"]


def test_relay_ends_a_session_for_an_unknown_call(landing_dir: Path):
    client = receiver(landing_dir)
    path = "/voice/relay?call_id=call_ffffffffffffffff"
    with client.websocket_connect(path, headers={"X-Twilio-Signature": relay_signature(path)}) as ws:
        ws.send_text(json.dumps({"type": "setup", "callSid": SID}))
        assert json.loads(ws.receive_text())["type"] == "end"


