"""Test support for voice: a local server speaking Twilio's Calls API, signed callbacks, and a ConversationRelay client.

The server answers as Twilio does: `POST .../Calls.json` (form-encoded, Basic auth) returns the Call resource (201),
`GET .../Calls/{sid}.json` the call as it stands, `POST .../Calls/{sid}.json` (Twiml) updates a live call; errors are
Twilio's JSON body. Tests decide each call's fate by setting `fates[to_number]` and read what was asked in `created`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from pytest_httpserver import HTTPServer
from starlette.applications import Starlette
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator
from werkzeug.wrappers import Request, Response

from outbound_pipeline.defs.voice_resources import voice_dirs
from outbound_pipeline.http.app import create_app
from outbound_pipeline.http.voice import voice_routes
from outbound_pipeline.providers.agent_offline import OfflineAgent
from outbound_pipeline.providers.base import ConversationAgent, VoiceDialer
from outbound_pipeline.providers.voice_twilio import TwilioVoice

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "voice_test_auth_token"
PUBLIC = "https://hooks.example.com"
CALLS = re.compile(rf"^/2010-04-01/Accounts/{ACCOUNT}/Calls(/(?P<sid>CA[0-9a-f]{{32}}))?\.json$")
AUTH = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()


def call_resource(sid: str, form: dict[str, str], status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {"sid": sid, "account_sid": ACCOUNT, "to": form.get("To"), "from": form.get("From"), "status": status,
            "direction": "outbound-api", "answered_by": None, "duration": None, "price": None, "price_unit": "USD",
            "start_time": None, "end_time": None, "date_created": "Mon, 05 Jan 2026 15:00:00 +0000",
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json", **extra}


@dataclass
class FakeTwilioVoice:
    """The Calls API. `refuse[to] = (http status, code, message)` makes Calls.create fail for that number."""

    server: HTTPServer
    created: list[dict[str, str]] = field(default_factory=list)
    updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    drop_answers: int = 0

    def __post_init__(self) -> None:
        self.server.expect_request(CALLS).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != AUTH:
            return self._error(401, 20003, "Authenticate")
        match = CALLS.match(request.path)
        assert match is not None
        sid = match.group("sid")
        form = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        if sid is None and request.method == "GET":  # the Calls list, filtered as Twilio does by To and From
            found = [c for c in self.calls.values()
                     if c["to"] == request.args.get("To", c["to"]) and c["from"] == request.args.get("From", c["from"])]
            page = {"calls": list(reversed(found)), "page": 0, "page_size": 50, "next_page_uri": None, "previous_page_uri": None,
                    "first_page_uri": request.full_path, "uri": request.full_path, "start": 0, "end": len(found)}
            return Response(json.dumps(page), status=200, content_type="application/json")
        if sid is None and request.method == "POST":
            if form.get("To") in self.refuse:
                status, code, message = self.refuse[form["To"]]
                return self._error(status, code, message)
            if self.drop_answers:  # Twilio creates the call, but its answer never reaches us (a crash, a cut connection)
                self.drop_answers -= 1
                self.created.append(form)
                self.calls[f"CA{len(self.created):032x}"] = call_resource(f"CA{len(self.created):032x}", form)
                return Response("", status=500)
            self.created.append(form)
            new_sid = f"CA{len(self.created):032x}"
            self.calls[new_sid] = call_resource(new_sid, form)
            return Response(json.dumps(self.calls[new_sid]), status=201, content_type="application/json")
        if sid not in self.calls:
            return self._error(404, 20404, f"The requested resource /Calls/{sid}.json was not found")
        if request.method == "POST":
            self.updates.append((sid, form))
        return Response(json.dumps(self.calls[sid]), status=200, content_type="application/json")

    def _error(self, status: int, code: int, message: str) -> Response:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
        return Response(json.dumps(body), status=status, content_type="application/json")

    def set(self, sid: str, **fields: Any) -> None:
        """What Twilio answers for this call from now on (status, answered_by, duration, price...)."""
        self.calls[sid].update(fields)

    def sid_for(self, to: str, nth: int = 1) -> str:
        sids = [sid for sid, call in self.calls.items() if call["to"] == to]
        return sids[nth - 1]

    def call_id_for(self, to: str, nth: int = 1) -> str:
        forms = [f for f in self.created if f["To"] == to]
        return re.sub(r"^.*call_id=", "", forms[nth - 1]["StatusCallback"])


def twilio_voice(server: HTTPServer) -> TwilioVoice:
    return TwilioVoice(ACCOUNT, TOKEN, PUBLIC, base_url=server.url_for("").rstrip("/"))


def receiver(landing_dir: Path, dialer: VoiceDialer | None = None, agent: ConversationAgent | None = None) -> TestClient:
    """The webhook receiver with the voice routes, as `outbound serve` mounts them (public URL PUBLIC)."""
    voice_landing, contexts = voice_dirs(landing_dir)
    voice_landing.mkdir(parents=True, exist_ok=True)
    routes = voice_routes(TOKEN, voice_landing, contexts, PUBLIC, agent or OfflineAgent(), dialer)
    app: Starlette = create_app(TOKEN, None, landing_dir, PUBLIC, unsubscribe_secret="s" * 32, extra_routes=routes)
    return TestClient(app, base_url="https://hooks.example.com")


def signed_post(client: TestClient, path: str, params: dict[str, str], token: str = TOKEN) -> Any:
    """POST a form as Twilio does, signed over the public URL and the parameters."""
    signature = RequestValidator(token).compute_signature(PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def relay_signature(path: str, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature("wss://hooks.example.com" + path, {})


def callback(client: TestClient, call_id: str, sid: str, status: str, seq: int, **extra: str) -> Any:
    params = {"CallSid": sid, "AccountSid": ACCOUNT, "CallStatus": status, "SequenceNumber": str(seq), "Timestamp": "now", **extra}
    return signed_post(client, f"/voice/status?call_id={call_id}", params)


def amd(client: TestClient, call_id: str, sid: str, answered_by: str) -> Any:
    params = {"CallSid": sid, "AccountSid": ACCOUNT, "AnsweredBy": answered_by, "MachineDetectionDuration": "2100"}
    return signed_post(client, f"/voice/amd?call_id={call_id}", params)


def converse(client: TestClient, call_id: str, sid: str, lines: list[str]) -> list[dict[str, Any]]:
    """Play ConversationRelay: setup, one prompt per line reading the agent's tokens to the end of its turn; after the
    last line the agent is expected to end the session (`end`)."""
    path = f"/voice/relay?call_id={call_id}"
    received: list[dict[str, Any]] = []
    with client.websocket_connect(path, headers={"X-Twilio-Signature": relay_signature(path)}) as ws:
        ws.send_text(json.dumps({"type": "setup", "sessionId": "VX1", "callSid": sid, "from": "+12125550199", "to": "+1",
                                 "direction": "outbound-api", "customParameters": {}}))
        for line in lines:
            ws.send_text(json.dumps({"type": "prompt", "voicePrompt": line, "lang": "en-US", "last": True}))
            while not (received and received[-1]["type"] == "text" and received[-1]["last"]):
                received.append(json.loads(ws.receive_text()))
            received.append({"type": "turn-done"})
        received.append(json.loads(ws.receive_text()))  # the agent ends the call
    return [m for m in received if m["type"] != "turn-done"]
