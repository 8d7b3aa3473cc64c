"""Twilio Programmable Voice through the official SDK: place calls with asynchronous answering-machine detection,
fetch calls for reconciliation, and leave the voicemail after the beep.

Every callback URL carries our call id in its query, so a callback names its call even before the SID is stored:
`/voice/twiml` (what to do when answered), `/voice/status` (call progress), `/voice/amd` (who answered).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from outbound_pipeline.providers.base import CallRequest, CallUpdate, OpenCall, ProviderError

log = logging.getLogger(__name__)
STATUS_EVENTS = ["initiated", "ringing", "answered", "completed"]


def voicemail_twiml(message: str) -> str:
    """Speak the message (the beep has passed) and hang up."""
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)


def relay_twiml(relay_url: str, greeting: str) -> str:
    """Hand the answered call to ConversationRelay, which opens our WebSocket and speaks the agent's words."""
    response = VoiceResponse()
    connect = response.connect()
    connect.conversation_relay(url=relay_url, welcome_greeting=greeting)
    return str(response)


class TwilioVoice:
    """`VoiceDialer` over Twilio. `public_base_url` is where Twilio reaches our receiver (https)."""

    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, public_base_url: str, base_url: str | None = None, timeout: float = 15.0):
        if not public_base_url:
            raise ValueError("Twilio voice needs OUTBOUND_PUBLIC_BASE_URL: the https address Twilio calls back and fetches TwiML from")
        self.public_base_url = public_base_url.rstrip("/")
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if base_url:
            self.client.api.base_url = base_url.rstrip("/")  # the SDK's only hook for another host

    def url(self, path: str, call_id: str) -> str:
        return f"{self.public_base_url}{path}?call_id={quote(call_id, safe='')}"

    def place(self, request: CallRequest) -> str:
        call_id = request.context.call_id
        try:
            call = self.client.calls.create(
                to=request.to, from_=request.from_, url=self.url("/voice/twiml", call_id), method="POST",
                status_callback=self.url("/voice/status", call_id), status_callback_event=STATUS_EVENTS,
                status_callback_method="POST", machine_detection="DetectMessageEnd", async_amd="true",
                async_amd_status_callback=self.url("/voice/amd", call_id), async_amd_status_callback_method="POST",
                timeout=request.ring_timeout_s)
        except TwilioRestException as exc:
            raise ProviderError("twilio", str(exc.code) if exc.code else None, str(exc.msg), exc.status) from exc
        except TwilioException as exc:
            raise ProviderError("twilio", None, str(exc)) from exc
        return str(call.sid)

    def updates(self, calls: Sequence[OpenCall], now: datetime) -> list[CallUpdate]:
        """Each open call as Twilio has it now; a call Twilio cannot say anything about is left for the next pass. A call
        whose placing was never confirmed is looked for among the calls to its number from its caller ID since it was placed."""
        found = []
        for open_call in calls:
            try:
                call = self.client.calls(open_call.provider_sid).fetch() if open_call.provider_sid else self._find(open_call)
            except TwilioException as exc:
                log.warning("could not read call %s: %s", open_call.provider_sid or open_call.call_id, exc)
                continue
            if call is None:
                continue
            call_id, sid = open_call.call_id, str(call.sid)
            answered_by = getattr(call, "answered_by", None)
            duration = int(call.duration) if call.duration not in (None, "") else None
            price = abs(float(call.price)) if call.price not in (None, "") else None
            found.append(CallUpdate(call_id=call_id, provider_sid=sid, status=call.status, answered_by=answered_by,
                                    duration_s=duration, price_usd=price, occurred_at=_naive(call.end_time) or now))
        return found

    def _find(self, open_call: OpenCall) -> Any:
        """The call Twilio created for a request whose answer was lost: same numbers, created at or after it was placed."""
        since = open_call.placed_at - timedelta(minutes=1)
        for call in self.client.calls.list(to=open_call.to, from_=open_call.from_, limit=20):
            created = _naive(call.date_created)
            if created is not None and created >= since:
                return call
        return None

    def leave_voicemail(self, provider_sid: str, message: str) -> None:
        try:
            self.client.calls(provider_sid).update(twiml=voicemail_twiml(message))
        except TwilioRestException as exc:
            raise ProviderError("twilio", str(exc.code) if exc.code else None, str(exc.msg), exc.status) from exc


def _naive(value: object) -> datetime | None:
    """A naive UTC time (the warehouse convention) from the SDK's datetime, or None."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
