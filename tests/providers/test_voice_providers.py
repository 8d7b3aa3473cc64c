"""Voice providers: Twilio's Calls API through the SDK (local server), the OpenAI agent streaming with its end_call tool
(local server speaking server-sent events), and the deterministic offline callee and agent."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from outbound_pipeline.providers.agent_offline import OfflineAgent
from outbound_pipeline.providers.agent_openai import OpenAIAgent, parse_end_call
from outbound_pipeline.providers.base import (
    CallContext,
    CallRequest,
    ConversationAgent,
    EndCall,
    OpenCall,
    ProviderError,
    VoiceDialer,
)
from outbound_pipeline.providers.voice_offline import OfflineVoice, fate_of
from tests.voice_support import FakeTwilioVoice, twilio_voice

NOW = datetime(2026, 1, 5, 15, 0)


def context(lead: str = "lead_1", attempt: int = 1, call_id: str = "call_0000000000000001") -> CallContext:
    return CallContext(call_id=call_id, campaign_id="calls", lead_id=lead, attempt=attempt, agent="ava", system_prompt="You are Ava.",
                       opening_line="Hi Maria, this is Ava from Routewise.", voicemail_message="Hi Maria, please call us back.",
                       goal="Book a demo with operations leaders", cta="a 15-minute call", first_name="Maria",
                       snippets=("Northwind opened a second depot in 2025.",))


def request(ctx: CallContext, to: str = "+12125550101") -> CallRequest:
    return CallRequest(to=to, from_="+12125550199", ring_timeout_s=25, placed_at=NOW, context=ctx)


def test_twilio_places_and_reconciles_calls(httpserver: HTTPServer):
    twilio = FakeTwilioVoice(httpserver)
    voice = twilio_voice(httpserver)
    assert isinstance(voice, VoiceDialer)
    sid = voice.place(request(context()))
    assert sid == "CA" + "0" * 31 + "1"
    form = parse_qs(httpserver.log[0][0].get_data(as_text=True))  # the SDK repeats the field once per event
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert twilio.created[0]["StatusCallbackMethod"] == "POST" and twilio.created[0]["AsyncAmdStatusCallbackMethod"] == "POST"
    twilio.set(sid, status="completed", answered_by="human", duration="61", price="-0.026", end_time="Mon, 05 Jan 2026 15:02:00 +0000")
    [update] = voice.updates([OpenCall("call_0000000000000001", sid, "+12125550101", "+12125550199", NOW)], NOW)
    assert (update.status, update.answered_by, update.duration_s, update.price_usd) == ("completed", "human", 61, 0.026)
    assert update.occurred_at == datetime(2026, 1, 5, 15, 2)
    assert voice.updates([OpenCall("call_y", "CA" + "f" * 32, "+1", "+2", NOW)], NOW) == []  # an unknown call: asked again next pass
    [found] = voice.updates([OpenCall("call_z", None, "+12125550101", "+12125550199", NOW)], NOW)  # its SID was never stored
    assert found.provider_sid == sid and found.call_id == "call_z"
    assert voice.updates([OpenCall("call_z", None, "+12125550101", "+12125550199", NOW + timedelta(hours=1))], NOW) == []


def test_twilio_refusal_is_a_provider_error(httpserver: HTTPServer):
    twilio = FakeTwilioVoice(httpserver)
    twilio.refuse["+15005550001"] = (400, 21217, "Phone number does not appear to be valid")
    with pytest.raises(ProviderError) as caught:
        twilio_voice(httpserver).place(request(context(), to="+15005550001"))
    assert caught.value.code == "21217" and caught.value.status == 400


def test_twilio_voice_needs_a_public_url():
    from outbound_pipeline.providers.voice_twilio import TwilioVoice

    with pytest.raises(ValueError, match="OUTBOUND_PUBLIC_BASE_URL"):
        TwilioVoice("AC" + "0" * 32, "token", "")


def _sse(chunks: list[dict]) -> str:
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1767625200, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_openai_agent_streams_tokens_and_ends_with_its_tool(httpserver: HTTPServer):
    asked: list[dict] = []

    def answer(req: Request) -> Response:
        asked.append(req.get_json())
        chunks = [_chunk({"role": "assistant", "content": "Great, "}), _chunk({"content": "talk soon!"}),
                  _chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "end_call", "arguments": ""}}]}),
                  _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"outcome": "interested", '}}]}),
                  _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"summary": "Agreed to a call on Tuesday."}'}}]}),
                  _chunk({}, "tool_calls")]
        return Response(_sse(chunks), content_type="text/event-stream")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    agent = OpenAIAgent("sk-test", base_url=httpserver.url_for("/v1"))
    assert isinstance(agent, ConversationAgent)
    ctx = context()
    assert list(agent.stream(ctx, [])) == [ctx.opening_line]  # the campaign's own opening line, no model call
    pieces = list(agent.stream(ctx, [("agent", ctx.opening_line), ("callee", "Yes, book it.")]))
    assert pieces == ["Great, ", "talk soon!", EndCall("interested", "Agreed to a call on Tuesday.")]
    [body] = asked
    assert body["stream"] is True and body["tools"][0]["function"]["name"] == "end_call"
    assert [m["role"] for m in body["messages"]] == ["system", "assistant", "user"]
    assert "Northwind opened a second depot" in body["messages"][0]["content"] and "You are Ava." in body["messages"][0]["content"]


def test_an_unknown_outcome_is_kept_for_a_person():
    assert parse_end_call('{"outcome": "maybe", "summary": "unsure"}') == EndCall("call_back_later", "unsure")
    assert parse_end_call("not json") == EndCall("call_back_later", "")


@pytest.mark.parametrize(("said", "outcome"), [
    ("Please stop calling me.", "do_not_call"), ("Sorry, wrong number.", "wrong_person"),
    ("No thanks, we're not interested.", "not_interested"), ("Can you call me back later?", "call_back_later"),
])
def test_offline_agent_ends_with_the_outcome_it_heard(said, outcome):
    ctx = context()
    pieces = list(OfflineAgent().stream(ctx, [("agent", ctx.opening_line), ("callee", said)]))
    assert isinstance(pieces[-1], EndCall) and pieces[-1].outcome == outcome


def test_offline_callee_is_deterministic_with_realistic_shares(tmp_path: Path):
    fates = Counter(fate_of(f"lead_{i}", 1) for i in range(3000))
    shares = {k: v / 3000 for k, v in fates.items()}
    assert 0.40 < shares["human"] < 0.50 and 0.15 < shares["voicemail"] < 0.21 and 0.20 < shares["no-answer"] < 0.28
    assert 0.04 < shares["busy"] < 0.10 and shares["failed"] > 0.01 and shares["silent"] > 0.01
    assert Counter(fate_of(f"lead_{i}", 2) for i in range(3000)) != fates  # a retry may go differently
    voice = OfflineVoice(tmp_path)
    humans = [f"lead_{i}" for i in range(200) if fate_of(f"lead_{i}", 1) == "human"][:5]
    for n, lead in enumerate(humans):
        voice.place(request(context(lead, call_id=f"call_{n:016x}")))
    calls = [OpenCall(f"call_{n:016x}", None, "+12125550101", "+12125550199", NOW) for n in range(len(humans))]
    assert {u.status for u in voice.updates(calls, NOW + timedelta(seconds=10))} <= {"in-progress"}
    done = voice.updates(calls, NOW + timedelta(minutes=10))
    again = OfflineVoice(tmp_path).updates(calls, NOW + timedelta(minutes=10))
    assert done == again and all(u.status == "completed" and u.answered_by == "human" and u.outcome for u in done)
    assert all(u.turns[0] == ("agent", "Hi Maria, this is Ava from Routewise.") for u in done)
    assert all(30 <= (u.duration_s or 0) <= 240 for u in done)
