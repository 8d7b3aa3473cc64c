"""Email through Resend (official `resend` SDK).

Every send carries the send id as `Idempotency-Key`, so a retry after a timeout or a
5xx can never deliver twice: Resend answers a repeated key with the original answer.
Bulk-sender rules (Gmail/Yahoo 2024) are applied on every message: RFC 8058 one-click
unsubscribe headers and our own `Message-ID` (kept so replies can be threaded back).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any, cast
from urllib.parse import quote

import pandas as pd
import resend
from resend.exceptions import ResendError

from outbound_pipeline.providers.base import OutboundMessage, ProviderError, SendResult
from outbound_pipeline.providers.concurrency import shared_limit
from outbound_pipeline.providers.retry import with_retries
from outbound_pipeline.store.schema import columns

DEFAULT_API_URL = "https://api.resend.com"
RECEIVING_PAGE = 100  # Resend's limit per GET /emails/receiving page
# Idempotency keys live 24 h at Resend; past that a replay would send again.
IDEMPOTENCY_WINDOW = timedelta(hours=23)

EVENT_COLUMNS = [c for c in columns("delivery_events") if c != "ingested_at"]
REPLY_COLUMNS = [c for c in columns("replies") if c != "ingested_at"]

_TRANSIENT_TYPES = frozenset({"concurrent_idempotent_requests", "HttpClientError", "rate_limit_exceeded"})
# Not the message's fault: raise, so the outbox keeps the send for later instead of failing it.
_ACCOUNT_TYPES = frozenset({"daily_quota_exceeded", "monthly_quota_exceeded", "missing_api_key", "invalid_api_key", "restricted_api_key"})
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")


class _ResendSdkGate:
    """The resend SDK reads `resend.api_key` / `resend.api_url` (module globals) per request.

    Calls with the same configuration run together; a call needing another configuration
    waits until those finish, so two clients in one process never send with each other's key.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._current: tuple[str, str] | None = None

    @contextmanager
    def use(self, api_key: str, api_url: str) -> Iterator[None]:
        wanted = (api_key, api_url)
        with self._cond:
            while self._active and self._current != wanted:
                self._cond.wait()
            resend.api_key, resend.api_url = wanted
            self._current = wanted
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()


_SDK_GATE = _ResendSdkGate()


def use_resend_sdk(api_key: str, api_url: str) -> Any:
    """Context manager under which resend SDK calls use this key and URL (thread-safe)."""
    return _SDK_GATE.use(api_key, api_url)


def _status(exc: ResendError) -> int | None:
    try:
        return int(exc.code)
    except (TypeError, ValueError):
        return None


def _is_retryable(exc: Exception) -> bool:
    """429 and 5xx (and a lost connection) are worth another try; the idempotency key makes it safe."""
    if not isinstance(exc, ResendError) or exc.error_type in _ACCOUNT_TYPES:
        return False
    status = _status(exc)
    return exc.error_type in _TRANSIENT_TYPES or status == 429 or (status is not None and status >= 500)


def _retry_after(exc: Exception, cap: float = 60.0) -> float | None:
    """Seconds the server asked us to wait (`retry-after`, else `ratelimit-reset`), capped."""
    headers = {k.lower(): v for k, v in (getattr(exc, "headers", None) or {}).items()}
    for name in ("retry-after", "ratelimit-reset"):
        try:
            return min(cap, max(0.0, float(headers[name])))
        except (KeyError, TypeError, ValueError):
            continue
    return None


def _utc(ts: datetime) -> datetime:
    """An aware UTC datetime (naive values are UTC, the warehouse convention)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def tag_value(value: object) -> str:
    """Resend tag values allow only ASCII letters, digits, `_` and `-` (at most 256)."""
    return _TAG_UNSAFE.sub("_", str(value))[:256] or "_"


def empty_event_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(events, replies) with the table columns and no rows."""
    return pd.DataFrame(columns=EVENT_COLUMNS), pd.DataFrame(columns=REPLY_COLUMNS)


class ResendEmail:
    """ChannelProvider for email over Resend's REST API."""

    name = "resend"
    channels = ("email",)
    settles_within = timedelta(0)  # nothing to poll: events arrive by webhook

    def __init__(
        self,
        api_key: str,
        from_address: str,
        base_url: str | None = None,
        unsubscribe_url: str = "https://example.invalid/unsubscribe?send_id={send_id}",
        unsubscribe_mailto: str | None = None,
        max_concurrency: int = 2,
        requests_per_second: float = 2.0,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        unsubscribe_link: Callable[[str], str] | None = None,
    ):
        """`unsubscribe_link` (send id -> URL) builds links carrying the receiver's token
        (`http.unsubscribe_tokens.link_builder`); without it the bare `unsubscribe_url` template is used."""
        self.api_key = api_key
        self.from_address = from_address
        # The SDK reads RESEND_API_URL only at import time; we pass the URL on every call instead.
        self.base_url = (base_url or os.environ.get("RESEND_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.unsubscribe_url = unsubscribe_url
        self.unsubscribe_mailto = unsubscribe_mailto
        self.unsubscribe_link = unsubscribe_link
        self.max_concurrency = max_concurrency
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        # One limiter per account (key) and host, shared by every client and thread of the process.
        account = hashlib.sha256(api_key.encode()).hexdigest()[:12]
        self._limiter = shared_limit(f"resend:{account}@{self.base_url}", requests_per_second).rate
        self._sleep = sleep
        self._clock = clock
        domain = parseaddr(from_address)[1].rpartition("@")[2].strip().lower()
        self.message_id_domain = domain or "outbound.local"

    # ------------------------------------------------------------------ payload

    def message_id(self, message: OutboundMessage) -> str:
        """Our RFC 5322 Message-ID: stable per send, so a replayed send keeps the same id."""
        return f"<{_MSGID_UNSAFE.sub('_', message.send_id)}@{self.message_id_domain}>"

    def _list_unsubscribe(self, message: OutboundMessage) -> str:
        if self.unsubscribe_link is not None:
            url = self.unsubscribe_link(message.send_id)
        else:
            url = self.unsubscribe_url.format(send_id=quote(message.send_id, safe=""))
        entries = [f"<{url}>"]
        if self.unsubscribe_mailto:
            mailto = self.unsubscribe_mailto.format(send_id=message.send_id)
            if not mailto.startswith("mailto:"):
                mailto = f"mailto:{mailto}"
            if "?" not in mailto:
                mailto += f"?subject=unsubscribe%20{quote(message.send_id, safe='')}"
            entries.append(f"<{mailto}>")
        return ", ".join(entries)

    def params(self, message: OutboundMessage) -> dict[str, Any]:
        """The `POST /emails` body. Deterministic: a replay must match the first payload byte for byte."""
        if message.channel != "email":
            raise ValueError(f"resend sends email only, not {message.channel!r} (send {message.send_id})")
        payload: dict[str, Any] = {
            "from": self.from_address,
            "to": [message.to],
            "subject": message.subject or "",
            "text": message.body,
            "headers": {
                "Message-ID": self.message_id(message),
                "List-Unsubscribe": self._list_unsubscribe(message),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
            "tags": [
                {"name": "campaign_id", "value": tag_value(message.campaign_id)},
                {"name": "send_id", "value": tag_value(message.send_id)},
            ],
        }
        if message.in_reply_to:
            payload["headers"]["In-Reply-To"] = message.in_reply_to
        if message.references:
            payload["headers"]["References"] = " ".join(message.references)
        if message.reply_to:
            payload["reply_to"] = [message.reply_to]
        return payload

    # ------------------------------------------------------------------ calls

    def _call(self, fn: Callable[[], Any], attempts: int | None = None) -> Any:
        """One SDK call, rate-limited, with our key and URL, retried on 429/5xx (`attempts` times, default `max_attempts`)."""

        def attempt() -> Any:
            self._limiter.acquire()
            with use_resend_sdk(self.api_key, self.base_url):
                return fn()

        def retry_after(exc: Exception) -> float | None:
            hinted = _retry_after(exc)
            if hinted is not None:
                self._limiter.hold_off(hinted)  # every caller on this account waits, not only this one
            return hinted

        return with_retries(attempt, _is_retryable, retry_after, attempts=attempts or self.max_attempts, base_delay=self.base_delay,
                            sleep=self._sleep)

    def _sent(self, message: OutboundMessage, email_id: str | None) -> SendResult:
        return SendResult(
            send_id=message.send_id,
            status="sent",
            provider=self.name,
            provider_message_id=email_id,
            flags=[f"message_id:{self.message_id(message)}"],
        )

    def _outcome(self, message: OutboundMessage, exc: ResendError) -> SendResult:
        """A refusal that will not change on retry, as a SendResult; anything else raises."""
        if exc.error_type == "invalid_idempotent_request":
            # The key was already used with another payload: something went out under this send id.
            # Never send again; the provider id is unknown.
            return SendResult(
                send_id=message.send_id,
                status="sent",
                provider=self.name,
                error_message=exc.message,
                flags=[f"message_id:{self.message_id(message)}", "idempotency_conflict"],
            )
        if _is_retryable(exc) or exc.error_type in _ACCOUNT_TYPES or _status(exc) in (401, 403):
            raise ProviderError(self.name, exc.error_type or str(exc.code), exc.message, _status(exc)) from exc
        return SendResult(
            send_id=message.send_id,
            status="failed",
            provider=self.name,
            error_code=exc.error_type or str(exc.code),
            error_message=exc.message,
        )

    def send(self, message: OutboundMessage) -> SendResult:
        """Send one email; a refused message comes back `failed`, an unknown outcome raises ProviderError.

        Raising (after retries on 429/5xx, or on key/quota problems) leaves the send pending:
        sending again later with the same idempotency key is safe.
        """
        params = self.params(message)
        try:
            response = self._call(lambda: resend.Emails.send(cast(resend.Emails.SendParams, params), {"idempotency_key": message.idempotency_key}))
        except ResendError as exc:
            return self._outcome(message, exc)
        return self._sent(message, response.get("id"))

    def reconcile(self, message: OutboundMessage) -> SendResult | None:
        """Did Resend accept this send? Found by replaying it with the same idempotency key.

        Resend has no search by our key, but answers a repeated key with the original
        response instead of sending again, so the replay returns the first email's id.
        If the first attempt never arrived, the replay sends it now, which is what the
        outbox wanted (the send was approved and recorded before the crash). The payload
        is rebuilt deterministically, so it matches; if it does not (edited meanwhile),
        Resend answers 409 and we report the send as already made. Keys expire after
        24 h, so for a send older than 23 h, and when Resend cannot be asked, this raises
        ProviderError (unknown) rather than risk a second email.
        """
        if message.sent_at is not None:
            sent_at = message.sent_at if message.sent_at.tzinfo else message.sent_at.replace(tzinfo=UTC)
            if self._clock() - sent_at > IDEMPOTENCY_WINDOW:
                raise ProviderError(self.name, "idempotency_window_passed",
                                    f"send {message.send_id} was attempted over {IDEMPOTENCY_WINDOW} ago: its key may have expired")
        return self.send(message)

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        """`reconcile`, with an unknown outcome folded into None."""
        try:
            return self.reconcile(message)
        except ProviderError:
            return None

    def get_received(self, email_id: str) -> dict[str, Any]:
        """A received (inbound) email in full: `GET /emails/receiving/{id}` (text, html, headers, message_id...).

        The `email.received` webhook carries only metadata; this fetches the body and headers.
        429/5xx are retried; anything else raises ProviderError with Resend's code and message.
        """
        try:
            return dict(self._call(lambda: resend.Emails.Receiving.get(email_id)))
        except ResendError as exc:
            raise ProviderError(self.name, exc.error_type or str(exc.code), exc.message, _status(exc)) from exc

    def list_received(self, since: datetime, seen: Sequence[str] = (), page_size: int = RECEIVING_PAGE, attempts: int = 1) -> list[dict[str, Any]]:
        """Received emails newer than `since` (plus those at exactly `since` not in `seen`), oldest first.

        `GET /emails/receiving` lists newest first; pages are followed with `after` (the last id of
        the page) until `has_more` is false or a page reaches an email older than `since`. Items
        carry metadata only (id, from, to, subject, message_id, created_at). One attempt per call by
        default: a poller that fails simply asks again on its next tick. Raises ProviderError.
        """
        horizon = _utc(since)
        seen_ids = set(seen)
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": min(max(page_size, 1), RECEIVING_PAGE)}
            if after:
                params["after"] = after
            try:
                page = dict(self._call(lambda p=params: resend.Emails.Receiving.list(p), attempts=attempts))  # type: ignore[misc]
            except ResendError as exc:
                raise ProviderError(self.name, exc.error_type or str(exc.code), exc.message, _status(exc)) from exc
            items = [dict(item) for item in page.get("data") or []]
            reached_older = False
            for item in items:
                created = _utc(pd.Timestamp(item["created_at"]).to_pydatetime()) if item.get("created_at") else None
                if created is None:
                    continue
                if created < horizon:
                    reached_older = True
                    continue
                if created == horizon and str(item.get("id")) in seen_ids:
                    continue
                found.append(item)
            if reached_older or not page.get("has_more") or not items:
                break
            after = str(items[-1]["id"])
        return sorted(found, key=lambda item: (pd.Timestamp(item["created_at"]), str(item["id"])))

    def poll_events(self, sends: pd.DataFrame, until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Resend has no event list API: delivery events and replies arrive by webhook instead."""
        return empty_event_frames()
