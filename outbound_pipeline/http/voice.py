"""Voice endpoints served beside the webhooks: what Twilio asks while a campaign's calls are live.

- `POST /voice/twiml`: the answered call is handed to ConversationRelay (`<Connect><ConversationRelay url="wss://...">`)
  with the campaign's opening line as its greeting.
- `POST /voice/status` and `POST /voice/amd`: call progress and answering-machine results, signed (X-Twilio-Signature)
  and landed like every webhook (fsynced before the 200). After the beep (`machine_end_*`) the voicemail message is
  spoken on the live call and the call hangs up.
- `WS /voice/relay`: ConversationRelay's WebSocket (`setup`, `prompt`, `interrupt`, `dtmf`, `error` in; `text` tokens
  and `end` out), answered by the conversation agent; every turn and the agent's outcome are landed.

Everything is keyed by our call id, carried in each URL's query and signed with it. What a call needs (opening line,
voicemail, prompt) is read from the context file the dial step wrote; the receiver never opens DuckDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from twilio import request_validator as twilio_rv

from outbound_pipeline.http.app import read_body
from outbound_pipeline.providers.base import CallContext, ConversationAgent, EndCall, VoiceDialer
from outbound_pipeline.providers.voice_payloads import CALL_SOURCE, RELAY_SOURCE
from outbound_pipeline.providers.voice_twilio import relay_twiml
from outbound_pipeline.store import landing

log = logging.getLogger(__name__)
CALL_ID_RE = re.compile(r"^call_[0-9a-f]{16}$")
HANGUP_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'
MAX_MESSAGE_BYTES = 64 * 1024
MAX_TURNS = 60  # a conversation longer than this is ended by us


class _Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def load_context(contexts_dir: Path, call_id: str) -> CallContext | None:
    """The context the dial step wrote for this call, or None (unknown call id, or not written yet)."""
    if not CALL_ID_RE.match(call_id or ""):
        return None
    path = contexts_dir / f"{call_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return CallContext(**{**data, "snippets": tuple(data.get("snippets") or ())})
    except (OSError, ValueError, TypeError):
        return None


def voice_routes(twilio_auth_token: str | None, landing_dir: Path, contexts_dir: Path, public_base_url: str | None,
                 agent: ConversationAgent, dialer: VoiceDialer | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> list[BaseRoute]:
    """The voice routes. `landing_dir` is the voice landing area the dial step reads; `dialer` leaves voicemails
    (None: nothing to leave, e.g. offline)."""
    validator = twilio_rv.RequestValidator(twilio_auth_token) if twilio_auth_token else None
    base = public_base_url.rstrip("/") if public_base_url else None
    committer = landing.GroupCommitter(Path(landing_dir), clock=clock)

    def signed_url(url: Any, path: str, scheme: str | None = None) -> str:
        query = url.query
        root = base if base is not None else f"{url.scheme}://{url.netloc}"
        if scheme is not None:
            root = re.sub(r"^https?", scheme, root) if base is not None else root
        return root + path + (f"?{query}" if query else "")

    def verify(url: str, params: dict[str, str], signature: str | None) -> None:
        if validator is None:
            raise _Refused(403, "twilio auth token not configured")
        if not signature:
            raise _Refused(403, "missing X-Twilio-Signature")
        try:
            valid = validator.validate(url, params, signature)
        except (ValueError, UnicodeError) as exc:
            raise _Refused(403, "unverifiable request URL") from exc
        if not valid:
            raise _Refused(403, "bad X-Twilio-Signature")

    async def signed_form(request: Request) -> dict[str, str]:
        body = await read_body(request)
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise _Refused(403, "undecodable form body") from exc
        verify(signed_url(request.url, request.url.path), params, request.headers.get(twilio_rv.SIGNATURE_HEADER))
        return params

    async def land(record: dict[str, Any]) -> None:
        try:
            await asyncio.wrap_future(committer.submit(record))
        except OSError as exc:
            log.error("could not land a voice record: %s", exc)
            raise _Refused(503, "landing area unavailable") from exc

    def guarded(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _Refused as refused:
                log.warning("refused %s %s: %s", request.method, request.url.path, refused)
                return PlainTextResponse("refused", status_code=refused.status, headers={"Connection": "close"})
            except Exception as exc:  # read_body's own refusal (413, client gone) and anything unexpected
                status = getattr(exc, "status", 400)
                log.warning("refused %s %s: %s", request.method, request.url.path, type(exc).__name__)
                return PlainTextResponse("refused", status_code=status if isinstance(status, int) else 400, headers={"Connection": "close"})
        return endpoint

    def call_id_of(request: Request) -> str:
        call_id = request.query_params.get("call_id", "")
        if not CALL_ID_RE.match(call_id):
            raise _Refused(400, "missing or malformed call_id")
        return call_id

    async def twiml(request: Request) -> Response:
        params = await signed_form(request)
        call_id = call_id_of(request)
        context = load_context(contexts_dir, call_id)
        if context is None:
            log.warning("no context for call %s: hanging up", call_id)
            return Response(HANGUP_TWIML, media_type="text/xml")
        relay = signed_url(request.url, "/voice/relay", scheme="wss")
        if base is None:
            relay = re.sub(r"^http", "ws", relay)
        log.debug("call %s (%s) answered: relay", call_id, params.get("CallSid"))
        return Response(relay_twiml(relay, context.opening_line), media_type="text/xml")

    async def callback(request: Request) -> Response:
        params = await signed_form(request)
        call_id = call_id_of(request)
        sid = params.get("CallSid", "")
        if not sid:
            raise _Refused(400, "callback without CallSid")
        kind = "amd" if request.url.path.endswith("/amd") else params.get("CallStatus", "")
        record = landing.make_record(CALL_SOURCE, f"{sid}:{kind}:{params.get('SequenceNumber', '')}", params)
        record["query"] = {"call_id": call_id}
        await land(record)
        answered_by = params.get("AnsweredBy", "")
        if kind == "amd" and answered_by.startswith("machine_end") and dialer is not None:
            context = load_context(contexts_dir, call_id)
            if context is not None:
                try:  # after the beep: the message, then hang up
                    await asyncio.to_thread(dialer.leave_voicemail, sid, context.voicemail_message)
                except Exception as exc:  # landed already; the call ends as voicemail either way
                    log.warning("could not leave the voicemail on %s: %s", sid, exc)
        return PlainTextResponse("ok")

    async def relay(websocket: WebSocket) -> None:
        url = signed_url(websocket.url, "/voice/relay", scheme="wss")
        try:
            verify(url, {}, websocket.headers.get(twilio_rv.SIGNATURE_HEADER))
        except _Refused as refused:
            log.warning("refused relay connection: %s", refused)
            await websocket.close(code=1008)
            return
        await websocket.accept()
        session = RelaySession(websocket, agent, contexts_dir, land, clock, websocket.query_params.get("call_id", ""))
        with contextlib.suppress(WebSocketDisconnect):  # Twilio hung up
            await session.run()

    return [
        Route("/voice/twiml", guarded(twiml), methods=["POST"]),
        Route("/voice/status", guarded(callback), methods=["POST"]),
        Route("/voice/amd", guarded(callback), methods=["POST"]),
        WebSocketRoute("/voice/relay", relay),
    ]


class RelaySession:
    """One ConversationRelay session: turns in, the agent's tokens out, everything landed in order."""

    def __init__(self, websocket: WebSocket, agent: ConversationAgent, contexts_dir: Path,
                 land: Callable[[dict[str, Any]], Any], clock: Callable[[], datetime], call_id: str):
        self.ws, self.agent, self.contexts_dir, self.land, self.clock = websocket, agent, contexts_dir, land, clock
        self.call_id = call_id
        self.context: CallContext | None = None
        self.turns: list[tuple[str, str]] = []
        self.seq = 0

    async def record(self, role: str, text: str) -> None:
        self.seq += 1
        if role != "system":
            self.turns.append((role, text))
        await self.land(landing.make_record(RELAY_SOURCE, f"{self.call_id}:turn:{self.seq}", {
            "call_id": self.call_id, "kind": "turn", "seq": self.seq, "role": role, "text": text, "at": self.clock().isoformat()}))

    async def run(self) -> None:
        while True:
            raw = await self.ws.receive_text()
            if len(raw.encode()) > MAX_MESSAGE_BYTES:
                await self.record("system", "message too large, ignored")
                continue
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            if kind == "setup":
                if not await self.setup(message):
                    return
            elif self.context is None:
                continue  # nothing before setup
            elif kind == "prompt" and isinstance(message.get("voicePrompt"), str) and message.get("last", True):
                await self.record("callee", message["voicePrompt"])
                if await self.answer():
                    return
            elif kind == "interrupt":
                heard = str(message.get("utteranceUntilInterrupt") or "")
                await self.record("system", f"interrupted; the callee heard: {heard}"[:500])
            elif kind == "dtmf":
                await self.record("system", f"pressed {str(message.get('digit'))[:8]}")
            elif kind == "error":
                await self.record("system", f"relay error: {str(message.get('description'))[:300]}")

    async def setup(self, message: dict[str, Any]) -> bool:
        custom = message.get("customParameters")
        custom = custom if isinstance(custom, dict) else {}
        self.call_id = self.call_id or str(custom.get("call_id") or "")
        self.context = load_context(self.contexts_dir, self.call_id)
        if self.context is None:
            await self.ws.send_json({"type": "end", "handoffData": json.dumps({"reason": "unknown call"})})
            await self.ws.close()
            return False
        await self.record("agent", self.context.opening_line)  # spoken by the relay as its welcome greeting
        return True

    async def answer(self) -> bool:
        """Stream the agent's turn; True when the call ended."""
        assert self.context is not None
        pieces: Iterator[str | EndCall] = iter(self.agent.stream(self.context, list(self.turns)))
        text, end = "", None
        while True:
            piece = await asyncio.to_thread(next, pieces, None)
            if piece is None:
                break
            if isinstance(piece, EndCall):
                end = piece
                continue
            text += piece
            await self.ws.send_json({"type": "text", "token": piece, "last": False})
        await self.ws.send_json({"type": "text", "token": "", "last": True})
        if text:
            await self.record("agent", text)
        if end is None and len(self.turns) >= MAX_TURNS:
            end = EndCall("call_back_later", "the conversation ran too long and was ended")
        if end is None:
            return False
        await self.land(landing.make_record(RELAY_SOURCE, f"{self.call_id}:end", {
            "call_id": self.call_id, "kind": "end", "outcome": end.outcome, "summary": end.summary}))
        await self.ws.send_json({"type": "end", "handoffData": json.dumps({"outcome": end.outcome, "summary": end.summary})})
        await self.ws.close()
        return True


def voice_routes_from_env(twilio_auth_token: str | None, landing_dir: Path, public_base_url: str | None) -> Sequence[BaseRoute]:
    """The voice routes as `outbound serve` mounts them: the OpenAI agent when OPENAI_API_KEY is set (else the offline
    one), Twilio for voicemails when its credentials are set."""
    from outbound_pipeline.defs.voice_resources import voice_dirs
    from outbound_pipeline.providers.agent_offline import OfflineAgent

    agent: ConversationAgent = OfflineAgent()
    if os.environ.get("OPENAI_API_KEY"):
        from outbound_pipeline.providers.agent_openai import OpenAIAgent

        agent = OpenAIAgent(os.environ["OPENAI_API_KEY"], os.environ.get("OUTBOUND_VOICE_MODEL", "gpt-4o-mini"),
                            os.environ.get("OPENAI_BASE_URL") or None)
    dialer: VoiceDialer | None = None
    sid = os.environ.get("TWILIO_ACCOUNT_SID")
    if sid and twilio_auth_token and public_base_url:
        from outbound_pipeline.providers.voice_twilio import TwilioVoice

        dialer = TwilioVoice(sid, twilio_auth_token, public_base_url, os.environ.get("OUTBOUND_TWILIO_BASE_URL") or None)
    voice_landing, contexts = voice_dirs(Path(landing_dir))
    voice_landing.mkdir(parents=True, exist_ok=True)
    return voice_routes(twilio_auth_token, voice_landing, contexts, public_base_url, agent, dialer)


def relay_url_for(public_base_url: str, call_id: str) -> str:
    """The WebSocket URL the TwiML names for a call (what Twilio signs on the handshake)."""
    return re.sub(r"^http", "ws", public_base_url.rstrip("/")) + f"/voice/relay?call_id={quote(call_id, safe='')}"
