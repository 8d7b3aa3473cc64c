"""The interfaces every external service sits behind.

Each service has two implementations: the real client (official SDK) and a
deterministic offline one. Assets only ever see these interfaces, so switching
from offline to real is a matter of credentials, never of code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import pandas as pd

CHANNELS = ("email", "whatsapp", "sms")


class ProviderError(Exception):
    """A provider refused a request; `code` and `message` are the provider's own."""

    def __init__(self, provider: str, code: str | None, message: str, status: int | None = None):
        super().__init__(f"{provider} error {code}: {message}")
        self.provider = provider
        self.code = code
        self.message = message
        self.status = status


# --------------------------------------------------------------------------- research


@dataclass(frozen=True)
class LeadProfile:
    """What a provider may know about a lead: identity, company and custom variables."""

    lead_id: str
    first_name: str
    last_name: str
    company: str
    role: str
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    owner_email: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Snippet:
    """One cited public signal about a lead."""

    snippet_id: str
    source_url: str
    title: str
    text: str
    published_date: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class ResearchResult:
    lead_id: str
    query: str
    snippets: list[Snippet]
    provider: str
    cost_usd: float = 0.0


@runtime_checkable
class ResearchProvider(Protocol):
    """Finds 3-5 cited public snippets about a lead, relevant to the campaign goal."""

    name: str

    def research(self, lead: LeadProfile, goal: str) -> ResearchResult: ...


# --------------------------------------------------------------------------- compose


@dataclass(frozen=True)
class StepBrief:
    """What the campaign asks of this touch."""

    touch: int
    intent: str
    channels: tuple[str, ...]  # preference order
    tone: str | None = None
    cta: str | None = None


@dataclass(frozen=True)
class ComposeRequest:
    campaign_id: str
    goal: str
    voice: str
    lead: LeadProfile
    step: StepBrief
    snippets: list[Snippet]
    available_channels: tuple[str, ...]  # channels this lead can be reached on, in preference order
    previous_bodies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ComposedDraft:
    channel: str
    tone: str
    cta: str
    subject: str | None
    body: str
    cited_snippet_ids: list[str]
    composer: str
    cost_usd: float = 0.0
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplyToAnswer:
    """A lead's reply to one of our messages, with what an answer needs to know."""

    reply_id: str
    campaign_id: str
    lead_id: str
    first_name: str
    company: str
    goal: str
    touch: int | None  # the touch they replied to
    channel: str  # the answer goes out on the channel the reply came in on
    intent: str
    body: str
    we_sent: str | None = None  # the message they replied to


@dataclass(frozen=True)
class ComposedAnswer:
    body: str
    composer: str
    cost_usd: float = 0.0


@runtime_checkable
class Composer(Protocol):
    """Writes one grounded draft for one lead and touch, and answers to leads' replies."""

    name: str

    def compose(self, request: ComposeRequest) -> ComposedDraft: ...

    def answer(self, reply: ReplyToAnswer) -> ComposedAnswer:
        """The text of an answer to `reply` (drafted for approval, never sent from here)."""
        ...


# --------------------------------------------------------------------------- channels


@dataclass(frozen=True)
class WhatsAppTemplate:
    """An approved WhatsApp Content template, used outside the 24-hour window.

    `variables` maps a template slot ("1", "2", ...) to a source: a lead field
    (`first_name`), a custom variable (`custom.plan`) or a fixed value (`static:Hello`).
    """

    content_sid: str
    variables: dict[str, str] = field(default_factory=dict)
    media_url: str | None = None  # a media template's URL as registered (its slots filled by `variables`): kept for the record
    buttons: tuple[str, ...] = ()  # quick-reply titles as registered: kept for the record; Twilio sends them with the template


@dataclass(frozen=True)
class OutboundMessage:
    """One approved message, ready for a channel. `idempotency_key` is the send's own id."""

    send_id: str
    idempotency_key: str
    campaign_id: str
    touch: int
    lead_id: str
    channel: str
    to: str
    body: str
    subject: str | None = None
    reply_to: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)  # lead fields, plus `custom.<name>` entries
    sent_at: datetime | None = None  # the pipeline clock's time of sending
    last_inbound_at: datetime | None = None  # the lead's last inbound message (WhatsApp 24-hour window)
    whatsapp_template: WhatsAppTemplate | None = None
    media_url: str | None = None  # WhatsApp free text: media sent with the body (Twilio MediaUrl); the template carries its own
    in_reply_to: str | None = None  # email answers: the lead's Message-ID, so the answer threads under their reply
    references: tuple[str, ...] = ()  # email answers: the thread's Message-IDs, oldest first


@dataclass(frozen=True)
class SendResult:
    send_id: str
    status: str  # 'sent' | 'failed' | 'suppressed'
    provider: str
    provider_message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    cost_usd: float = 0.0
    segments: int | None = None
    lead_status: str | None = None  # 'opted_out' or 'invalid' when the provider says so (e.g. Twilio 21610, 21211)
    flags: list[str] = field(default_factory=list)  # e.g. 'template_variable_missing:2'


@runtime_checkable
class ChannelProvider(Protocol):
    """Delivers messages on one or more channels and reports what happened to them."""

    name: str
    channels: tuple[str, ...]

    def send(self, message: OutboundMessage) -> SendResult:
        """Send once. Calling again with the same idempotency key must not send twice."""
        ...

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        """After a crash: did the provider already accept this message? None when unknown."""
        ...

    def poll_events(self, sends: pd.DataFrame, until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Delivery events and replies for `sends` (rows of the sends table) up to `until`.

        Returns (events, replies) frames with the columns of the delivery_events and
        replies tables, minus `ingested_at`. Event ids are stable, so polling twice is safe.
        """
        ...


# --------------------------------------------------------------------------- inbound


@runtime_checkable
class InboundSource(Protocol):
    """A provider that lists the messages it received, so what webhooks missed can still be read."""

    name: str

    def poll_inbound(self, since: datetime, seen: Sequence[str] = ()) -> pd.DataFrame:
        """Inbound messages received at or after `since` (minus the ids in `seen`, taken at exactly `since`), oldest first,
        as unattributed replies rows."""
        ...


@runtime_checkable
class ReceivedEmails(Protocol):
    """A provider that receives email for us: lists what arrived (metadata only) and returns one email in full."""

    name: str

    def list_received(self, since: datetime, seen: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Received emails newer than `since` (plus those at exactly `since` not in `seen`), oldest first: id, from, to,
        subject, message_id, created_at."""
        ...

    def get_received(self, email_id: str) -> dict[str, Any]:
        """One received email with its text, html and headers."""
        ...


# --------------------------------------------------------------------------- replies


@runtime_checkable
class IntentClassifier(Protocol):
    """Reads one inbound reply and names its intent (one of `domain.intents.INTENTS`); opt-out keywords always win."""

    name: str

    def classify(self, text: str) -> str: ...


# --------------------------------------------------------------------------- voice


@dataclass(frozen=True)
class CallContext:
    """What the agent of one call knows: who it calls and why, its prompt, the rendered opening line and voicemail."""

    call_id: str
    campaign_id: str
    lead_id: str
    attempt: int
    agent: str
    system_prompt: str
    opening_line: str
    voicemail_message: str
    goal: str
    cta: str | None = None
    first_name: str = ""
    snippets: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallRequest:
    """One call to place: to, from (caller ID), ring time, and the context its conversation needs."""

    to: str
    from_: str
    ring_timeout_s: int
    placed_at: datetime
    context: CallContext


@dataclass(frozen=True)
class CallUpdate:
    """What the provider says about a call: its status (Twilio's CallStatus words), who answered, how long, the price.

    `turns` ((role, text) pairs) and the agent's `outcome`/`summary` come with a conversation when the provider knows it
    (the offline simulation); a real call's conversation arrives through the relay endpoint instead.
    """

    call_id: str | None
    provider_sid: str | None
    status: str | None
    answered_by: str | None = None
    duration_s: int | None = None
    price_usd: float | None = None
    occurred_at: datetime | None = None
    error: str | None = None
    voicemail_left: bool | None = None
    turns: tuple[tuple[str, str], ...] = ()
    outcome: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class OpenCall:
    """A call not known to have ended: our id, the provider's SID (None when the placing was never confirmed, e.g. a crash
    right after the request), and the numbers and time that identify it at the provider otherwise."""

    call_id: str
    provider_sid: str | None
    to: str
    from_: str
    placed_at: datetime


@runtime_checkable
class VoiceDialer(Protocol):
    """Places calls and reports on them; results also arrive as signed callbacks, landed by the receiver."""

    name: str

    def place(self, request: CallRequest) -> str:
        """Place the call; returns the provider's call SID. Raises `ProviderError` when refused."""
        ...

    def updates(self, calls: Sequence[OpenCall], now: datetime) -> list[CallUpdate]:
        """The latest known state of open calls, for reconciliation; a call without SID is looked for by its numbers."""
        ...

    def leave_voicemail(self, provider_sid: str, message: str) -> None:
        """After the beep: speak the message on the live call and hang up."""
        ...


@dataclass(frozen=True)
class EndCall:
    """The agent ends the call with an outcome (`domain.dialer.OUTCOMES`) and a short summary."""

    outcome: str
    summary: str


@runtime_checkable
class ConversationAgent(Protocol):
    """Holds the conversation: given the turns so far ((role, text): agent / callee), streams its next words."""

    name: str

    def stream(self, context: CallContext, turns: Sequence[tuple[str, str]]) -> Iterator[str | EndCall]:
        """Text tokens of the agent's next turn; an `EndCall` last when the call should end."""
        ...
