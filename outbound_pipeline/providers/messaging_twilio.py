"""WhatsApp and SMS through Twilio's Messages API (official `twilio` SDK).

Twilio has no idempotency key, so the one risk is sending twice: a 429 is retried
blindly (Twilio refused it), but after a 5xx or a lost connection we first look for
the message at Twilio and only post again when it is not there.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from outbound_pipeline.providers import twilio_payloads
from outbound_pipeline.providers.base import OutboundMessage, ProviderError, SendResult, WhatsAppTemplate
from outbound_pipeline.providers.concurrency import map_concurrently, shared_limit
from outbound_pipeline.providers.retry import with_retries
from outbound_pipeline.providers.sms_segments import count_segments
from outbound_pipeline.store.schema import columns

EVENT_COLUMNS = [c for c in columns("delivery_events") if c != "ingested_at"]
REPLY_COLUMNS = [c for c in columns("replies") if c != "ingested_at"]

WHATSAPP_WINDOW = timedelta(hours=24)
ERR_OUTSIDE_WINDOW = 63016
ERR_OPTED_OUT = 21610
ERR_INVALID_TO = 21211
LEAD_STATUS_BY_CODE = {ERR_OPTED_OUT: "opted_out", ERR_INVALID_TO: "invalid"}

# A status implies the ones before it: a message seen as `read` was also sent and delivered.
EVENTS_BY_STATUS: dict[str, tuple[str, ...]] = {
    "sent": ("sent",),
    "delivered": ("sent", "delivered"),
    "read": ("sent", "delivered", "read"),
    "undelivered": ("sent", "undelivered"),
    "failed": ("failed",),
    "canceled": ("failed",),
}
LIST_PAGE = 1000  # the Messages list's largest page
LOOKUP_SKEW = timedelta(minutes=5)  # clock difference tolerated between us and Twilio
_SDK_PREFIX = re.compile(r"^Unable to \w+ record: ")


def _page_response(exc: Exception) -> Any | None:
    """List pages fail as a bare TwilioException("Unable to fetch page", response)."""
    if type(exc) is TwilioException and len(exc.args) >= 2 and hasattr(exc.args[1], "status_code"):
        return exc.args[1]
    return None


def _page_error(exc: Exception) -> dict[str, Any]:
    response = _page_response(exc)
    try:
        body = json.loads(response.text) if response is not None else {}
    except (TypeError, ValueError):
        body = {}
    return body if isinstance(body, dict) else {}


def _code(exc: Exception) -> int | None:
    code = getattr(exc, "code", None) if not _page_response(exc) else _page_error(exc).get("code")
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None


def _status(exc: Exception) -> int | None:
    response = _page_response(exc)
    status = response.status_code if response is not None else getattr(exc, "status", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _message_text(exc: Exception) -> str:
    """Twilio's own error message, without the SDK's "Unable to create record: " prefix."""
    if isinstance(exc, TwilioServiceException):
        return exc.detail or exc.title
    if isinstance(exc, TwilioRestException):
        return _SDK_PREFIX.sub("", exc.msg or "")
    if _page_response(exc) is not None:
        return str(_page_error(exc).get("message") or exc.args[0])
    return str(exc)


def _is_transport(exc: Exception) -> bool:
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _is_retryable(exc: Exception) -> bool:
    """429, 5xx and lost connections; every other refusal would only repeat."""
    if _is_transport(exc):
        return True
    status = _status(exc) if isinstance(exc, TwilioException) else None
    return status is not None and (status == 429 or status >= 500)


def _ambiguous(exc: Exception) -> bool:
    """Twilio may have created the message even though we saw an error."""
    status = _status(exc)
    return _is_transport(exc) or (status is not None and status >= 500)


def _utc(ts: datetime | None) -> datetime | None:
    if ts is None:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _naive_utc(ts: datetime) -> datetime:
    """Tables store UTC without a zone."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


def inside_window(message: OutboundMessage, now: datetime) -> bool:
    """True when the lead wrote to us within 24 h of this send, so free-form text is allowed."""
    inbound = _utc(message.last_inbound_at)
    at = _utc(message.sent_at) or now
    return inbound is not None and timedelta(0) <= at - inbound < WHATSAPP_WINDOW


def template_variables(template: WhatsAppTemplate, variables: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """ContentVariables for a template, and flags for the slots we could not fill.

    A source is a lead field (`first_name`), a custom variable (`custom.plan`, looked up
    as `custom.plan` or under a `custom` dict) or a literal (`static:Hello`). A missing
    value stays visible as `{{N}}` so nobody mistakes the gap for content.
    """
    values: dict[str, str] = {}
    flags: list[str] = []
    for slot in sorted(template.variables, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)):
        source = template.variables[slot]
        if source.startswith("static:"):
            value: Any = source.removeprefix("static:")
        elif source.startswith("custom."):
            value = variables.get(source)
            if value is None and isinstance(variables.get("custom"), dict):
                value = variables["custom"].get(source.removeprefix("custom."))
        else:
            value = variables.get(source)
        if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
            values[slot] = "{{" + slot + "}}"
            flags.append(f"template_variable_missing:{slot}")
        else:
            values[slot] = str(value)
    return values, flags


class TwilioMessaging:
    """ChannelProvider for WhatsApp (Messaging Service + Content templates) and SMS."""

    name = "twilio"
    channels = ("whatsapp", "sms")

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        messaging_service_sid: str | None = None,
        whatsapp_from: str | None = None,
        sms_from_numbers: Sequence[str] = (),
        status_callback_url: str | None = None,
        base_url: str | None = None,
        sms_per_second_per_number: float = 1.0,
        max_concurrency: int = 4,
        requests_per_second: float = 0.0,
        in_flight: int = 100,
        sms_price_per_segment_usd: float = 0.0079,
        whatsapp_price_usd: float = 0.005,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        timeout: float = 30.0,
        lookup_page_size: int = 50,
        list_above: int = 50,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.account_sid = account_sid
        self._auth_token = auth_token
        self.messaging_service_sid = messaging_service_sid
        self.whatsapp_from = whatsapp_address(whatsapp_from) if whatsapp_from else None
        self.sms_from_numbers = list(sms_from_numbers)
        self.status_callback_url = status_callback_url
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_concurrency = max_concurrency
        self.sms_price_per_segment_usd = sms_price_per_segment_usd
        self.whatsapp_price_usd = whatsapp_price_usd
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.timeout = timeout
        self.lookup_page_size = lookup_page_size
        self.list_above = list_above  # more messages than this to poll: read the Messages list by day instead of one fetch each
        self._sleep = sleep
        self._clock = clock
        # Each long code is paced on its own (carriers allow about 1 SMS/s per number), shared by every client of the process;
        # the account's API limit (requests per second, and Twilio's 100 concurrent requests) covers every call.
        self._number_limiters = {n: shared_limit(f"twilio-sms:{n}", sms_per_second_per_number).rate for n in self.sms_from_numbers}
        self._service_limiter = shared_limit(f"twilio-service:{account_sid}:{messaging_service_sid}",
                                             sms_per_second_per_number * max(1, len(self.sms_from_numbers))).rate
        self._account = shared_limit(f"twilio:{account_sid}@{self.base_url}", requests_per_second, in_flight)
        self._next_number = 0
        self._pool_lock = threading.Lock()
        self._local = threading.local()  # one SDK client (and HTTP session) per thread

    # ------------------------------------------------------------------ plumbing

    @property
    def client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(self.account_sid, self._auth_token, http_client=TwilioHttpClient(timeout=self.timeout))
            if self.base_url:
                client.api.base_url = self.base_url  # the SDK's only hook for another host
            self._local.client = client
        return client

    def _retrying(self, call: Callable[[], Any]) -> Any:
        return with_retries(call, _is_retryable, attempts=self.max_attempts, base_delay=self.base_delay, sleep=self._sleep)

    def _next_sms_sender(self) -> str | None:
        """Round-robin over the number pool; None means "let the Messaging Service pick"."""
        if not self.sms_from_numbers:
            return None
        with self._pool_lock:
            number = self.sms_from_numbers[self._next_number % len(self.sms_from_numbers)]
            self._next_number += 1
        return number

    def _create(self, message: OutboundMessage, params: dict[str, Any], pace: Callable[[], object], match: Callable[[Any], bool]) -> Any:
        """POST one message; before re-posting after an ambiguous error, check it is not already there."""
        state: dict[str, Any] = {"ambiguous": False}

        def attempt() -> Any:
            if state["ambiguous"]:
                # If Twilio cannot be asked, this raises and the next attempt asks again.
                found = self._find(message, match, retry=False)
                if found is not None:
                    return found
            pace()
            try:
                with self._account.slot():
                    return self.client.api.account.messages.create(**params)
            except Exception as exc:
                state["ambiguous"] = _ambiguous(exc)
                raise

        try:
            return self._retrying(attempt)
        except requests.RequestException as exc:
            raise ProviderError(self.name, "connection", str(exc)) from exc

    def _result(
        self,
        message: OutboundMessage,
        created: Any,
        *,
        segments: int | None,
        cost: float,
        flags: list[str],
    ) -> SendResult:
        failed = created.status in ("failed", "undelivered", "canceled")
        return SendResult(
            send_id=message.send_id,
            status="failed" if failed else "sent",
            provider=self.name,
            provider_message_id=created.sid,
            error_code=str(created.error_code) if created.error_code else None,
            error_message=created.error_message,
            cost_usd=0.0 if failed else cost,
            segments=segments,
            flags=flags,
        )

    def _failed(self, message: OutboundMessage, exc: Exception, flags: list[str] | None = None) -> SendResult:
        """A refusal as a result; unknown outcomes (after retries) and account problems raise."""
        status, code = _status(exc), _code(exc)
        if status is None or _is_retryable(exc) or status in (401, 403):
            raise ProviderError(self.name, str(code) if code else None, _message_text(exc), status) from exc
        return SendResult(
            send_id=message.send_id,
            status="failed",
            provider=self.name,
            error_code=str(code if code is not None else status),
            error_message=_message_text(exc),
            lead_status=LEAD_STATUS_BY_CODE.get(code) if code is not None else None,
            flags=list(flags or []),
        )

    # ------------------------------------------------------------------ send

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one WhatsApp message or SMS.

        Refusals come back `failed` with Twilio's code and message (and `lead_status`
        for opt-outs and invalid numbers). After retries on 429/5xx the outcome is
        unknown, so ProviderError is raised and the send stays pending for `lookup`.
        """
        if message.channel == "whatsapp":
            return self._send_whatsapp(message)
        if message.channel == "sms":
            return self._send_sms(message)
        raise ValueError(f"twilio sends whatsapp and sms, not {message.channel!r} (send {message.send_id})")

    def _base_params(self, to: str, sender: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"to": to}
        if sender:
            params["from_"] = sender
        elif self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        else:
            raise ProviderError(self.name, "not_configured", "no sender: set messaging_service_sid or a from number")
        if self.status_callback_url:
            params["status_callback"] = self.status_callback_url
        return params

    def _whatsapp_params(self, message: OutboundMessage, use_template: bool) -> tuple[dict[str, Any], list[str]]:
        sender = None if self.messaging_service_sid else self.whatsapp_from
        params = self._base_params(whatsapp_address(message.to), sender)
        if not use_template:
            params["body"] = message.body
            if message.media_url:  # free-form media is allowed inside the window only; a template carries its own
                params["media_url"] = [message.media_url]
            return params, []
        assert message.whatsapp_template is not None
        values, flags = template_variables(message.whatsapp_template, message.variables)
        params["content_sid"] = message.whatsapp_template.content_sid
        params["content_variables"] = json.dumps(values, ensure_ascii=False)
        return params, flags

    def _whatsapp_match(self, message: OutboundMessage) -> Callable[[Any], bool]:
        """Recognise our message in Twilio's list: same body, or a template filled with our values."""
        expected_values: list[str] | None = None
        if message.whatsapp_template is not None:
            values, _ = template_variables(message.whatsapp_template, message.variables)
            expected_values = [v for v in values.values() if not v.startswith("{{")]

        def match(found: Any) -> bool:
            body = (found.body or "").strip()
            if body == message.body.strip():
                return True
            return expected_values is not None and bool(body) and all(v in body for v in expected_values)

        return match

    def _send_whatsapp(self, message: OutboundMessage) -> SendResult:
        template_needed = not inside_window(message, self._clock())
        if template_needed and message.whatsapp_template is None:
            return SendResult(
                send_id=message.send_id,
                status="failed",
                provider=self.name,
                error_code="no_template",
                error_message="outside the WhatsApp 24-hour window and no approved template for this step",
            )
        params, flags = self._whatsapp_params(message, use_template=template_needed)
        match = self._whatsapp_match(message)
        try:
            created = self._create(message, params, lambda: None, match)
        except TwilioException as exc:
            if _code(exc) != ERR_OUTSIDE_WINDOW or template_needed:
                return self._failed(message, exc, flags)
            # Twilio says the window is closed (our last_inbound_at was stale): the template
            # is the only thing that can go out now. Re-posting the same Body would fail again.
            if message.whatsapp_template is None:
                return self._failed(message, exc, ["whatsapp_window_closed"])
            params, flags = self._whatsapp_params(message, use_template=True)
            flags = ["whatsapp_window_closed", *flags]
            try:
                created = self._create(message, params, lambda: None, match)
            except TwilioException as again:
                return self._failed(message, again, flags)
        return self._result(message, created, segments=None, cost=self.whatsapp_price_usd, flags=flags)

    def _send_sms(self, message: OutboundMessage) -> SendResult:
        encoding, segments = count_segments(message.body)
        sender = self._next_sms_sender()
        params = self._base_params(message.to, sender)
        params["body"] = message.body
        limiter = self._number_limiters[sender] if sender else self._service_limiter
        flags = ["sms_ucs2"] if encoding == "UCS-2" else []

        def match(found: Any) -> bool:
            return (found.body or "").strip() == message.body.strip()

        try:
            created = self._create(message, params, limiter.acquire, match)
        except TwilioException as exc:
            return dataclasses.replace(self._failed(message, exc, flags), segments=segments)
        return self._result(message, created, segments=segments, cost=segments * self.sms_price_per_segment_usd, flags=flags)

    # ------------------------------------------------------------------ reconcile

    def _find(self, message: OutboundMessage, match: Callable[[Any], bool], retry: bool = True) -> Any | None:
        """Our outbound message to this recipient since the send was attempted, if Twilio has it.

        Twilio's DateSent filter works by day and skips messages still queued (no
        date_sent yet), so we list the recipient's latest messages and compare
        date_created ourselves.
        """
        to = whatsapp_address(message.to) if message.channel == "whatsapp" else message.to
        since = (_utc(message.sent_at) or self._clock() - WHATSAPP_WINDOW) - LOOKUP_SKEW

        def fetch() -> list[Any]:
            return self.client.api.account.messages.list(to=to, limit=self.lookup_page_size)

        found = self._retrying(fetch) if retry else fetch()
        for item in found:
            created = _utc(item.date_created)
            if not (item.direction or "").startswith("outbound"):
                continue
            if created is not None and created < since:
                continue
            if match(item):
                return item
        return None

    def reconcile(self, message: OutboundMessage) -> SendResult | None:
        """Did Twilio already accept this send? Reconciled by listing messages to the recipient.

        Twilio has no idempotency key, so we match on recipient, time (since `sent_at`)
        and content: the exact body, or for a template the lead's values inside the
        rendered text. None when Twilio's list has no such message; ProviderError when
        Twilio cannot be asked, since sending again then could deliver twice.
        """
        if message.channel == "whatsapp":
            match = self._whatsapp_match(message)
        else:

            def match(found: Any) -> bool:
                return (found.body or "").strip() == message.body.strip()

        try:
            found = self._find(message, match)
        except TwilioException as exc:
            raise ProviderError(self.name, str(_code(exc)) if _code(exc) else None, _message_text(exc), _status(exc)) from exc
        except requests.RequestException as exc:
            raise ProviderError(self.name, "connection", str(exc)) from exc
        if found is None:
            return None
        if message.channel == "sms":
            segments = count_segments(message.body)[1]
            return self._result(message, found, segments=segments, cost=segments * self.sms_price_per_segment_usd, flags=[])
        return self._result(message, found, segments=None, cost=self.whatsapp_price_usd, flags=[])

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        """`reconcile`, with "Twilio cannot be asked" folded into None (unknown)."""
        try:
            return self.reconcile(message)
        except ProviderError:
            return None

    # ------------------------------------------------------------------ events

    def _fetch(self, sid: str) -> Any | None:
        try:
            def fetch() -> Any:
                with self._account.slot():
                    return self.client.api.account.messages(sid).fetch()

            return self._retrying(fetch)
        except TwilioException as exc:
            if _status(exc) == 404:
                return None  # deleted or never ours: nothing to report
            raise ProviderError(self.name, str(_code(exc)), _message_text(exc), _status(exc)) from exc

    # A status past which Twilio reports nothing new: tracking stops asking about the message.
    final_events = {"whatsapp": frozenset({"read", "failed", "undelivered"}), "sms": frozenset({"delivered", "failed", "undelivered"})}

    def _listed(self, since: datetime, sids: set[str]) -> dict[str, Any]:
        """Our messages among the account's Messages list sent on or after `since`'s day (pages of `LIST_PAGE`), by SID."""
        day = _utc(since)
        assert day is not None
        start = day.replace(hour=0, minute=0, second=0, microsecond=0)

        def fetch() -> dict[str, Any]:
            with self._account.slot():
                return {m.sid: m for m in self.client.api.account.messages.stream(date_sent_after=start, page_size=LIST_PAGE)
                        if m.sid in sids}

        return self._retrying(fetch)

    def poll_events(self, sends: pd.DataFrame, until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Delivery events for our sends, read from each message's current status.

        Many messages are read from the account's Messages list filtered by day (one request per `LIST_PAGE`
        messages); a few, and any the list does not show (still queued, so without a send date), one fetch each,
        concurrently. A status implies the earlier ones, so a
        message first seen as `read` also yields `sent` and `delivered`. Event ids hash
        the SID and event type, so polling again (or a webhook with the same id scheme)
        never duplicates. Replies are not polled here: the frame is empty.
        """
        replies = pd.DataFrame(columns=REPLY_COLUMNS)
        if sends is None or sends.empty:
            return pd.DataFrame(columns=EVENT_COLUMNS), replies
        rows = sends[(sends["provider"] == self.name) & sends["provider_message_id"].notna()]
        records = rows.to_dict("records")
        listed: dict[str, Any] = {}
        if len(records) > self.list_above:
            sent_at = pd.to_datetime(rows["sent_at"].fillna(rows["updated_at"])).min()
            try:
                listed = self._listed(sent_at.to_pydatetime(), {str(r["provider_message_id"]) for r in records})
            except (TwilioException, requests.RequestException):
                listed = {}  # the list cannot be read now: every message is fetched on its own, as for a few
        rest = [r for r in records if str(r["provider_message_id"]) not in listed]
        fetched_rest = map_concurrently(lambda r: self._fetch(str(r["provider_message_id"])), rest, max_workers=self.max_concurrency)
        found = {**listed, **{str(r["provider_message_id"]): m for r, m in zip(rest, fetched_rest, strict=True)}}
        fetched = [found.get(str(r["provider_message_id"])) for r in records]
        horizon = _utc(until)
        assert horizon is not None
        events: list[dict[str, Any]] = []
        for row, msg in zip(records, fetched, strict=True):
            if msg is None:
                continue
            for event_type in EVENTS_BY_STATUS.get(msg.status or "", ()):
                occurred = _utc(msg.date_sent if event_type == "sent" and msg.date_sent else msg.date_updated or msg.date_created)
                if occurred is None or occurred > horizon:
                    continue
                detail = {"sid": msg.sid, "status": msg.status, "error_code": msg.error_code, "error_message": msg.error_message}
                if event_type != msg.status:
                    detail["implied"] = True
                events.append(
                    {
                        # Same id as the status callback's: a status seen both ways is one row.
                        "event_id": twilio_payloads.event_id(msg.sid, event_type),
                        "send_id": row.get("send_id"),
                        "campaign_id": row.get("campaign_id"),
                        "touch": row.get("touch"),
                        "lead_id": row.get("lead_id"),
                        "channel": row.get("channel"),
                        "event_type": event_type,
                        "occurred_at": _naive_utc(occurred),
                        "provider": self.name,
                        "detail": json.dumps(detail, sort_keys=True),
                    }
                )
        return pd.DataFrame(events, columns=EVENT_COLUMNS), replies

    def poll_inbound(self, since: datetime, seen: Sequence[str] = (), page_size: int = 50) -> pd.DataFrame:
        """Inbound WhatsApp and SMS messages Twilio received at or after `since`, as a replies frame (oldest first).

        What webhooks can miss (receiver down, callback URL not set) is still in Twilio's
        Messages list. Twilio filters `DateSent>` by day, so every page of that day is read
        and the rest is filtered here; `seen` are SIDs already taken at exactly `since`.
        The SDK follows `next_page_uri`; a failure re-reads from the first page (ids are
        the SIDs, so nothing is stored twice). Nothing is attributed here.
        """
        start = _utc(since)
        assert start is not None

        def fetch() -> list[Any]:
            return list(self.client.api.account.messages.stream(date_sent_after=start, page_size=page_size))

        try:
            items = self._retrying(fetch)
        except TwilioException as exc:
            raise ProviderError(self.name, str(_code(exc)), _message_text(exc), _status(exc)) from exc
        except requests.RequestException as exc:
            raise ProviderError(self.name, "connection", str(exc)) from exc
        rows = []
        skip = set(seen)
        for msg in items:
            at = _utc(msg.date_sent or msg.date_created)
            if not (msg.direction or "").startswith("inbound") or at is None or at < start or (at == start and msg.sid in skip):
                continue
            sender = str(getattr(msg, "from_", None) or "")
            rows.append({
                "reply_id": msg.sid, "send_id": None, "campaign_id": None, "touch": None, "lead_id": None,
                "channel": twilio_payloads.channel_of({"From": sender}),
                "from_address": twilio_payloads.without_whatsapp_prefix(sender), "body": msg.body or "", "intent": "unknown",
                "received_at": _naive_utc(at), "provider": self.name,
            })
        frame = pd.DataFrame(rows, columns=REPLY_COLUMNS)
        return frame.sort_values(["received_at", "reply_id"], ignore_index=True) if not frame.empty else frame
