"""The campaign YAML spec: what a campaign is, validated with errors that name the field."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from outbound_pipeline.domain.audience import campaign_lists, combined_segment
from outbound_pipeline.domain.segments import Segment

Channel = Literal["email", "whatsapp", "sms", "voice"]
CHANNELS: tuple[Channel, ...] = ("email", "whatsapp", "sms")  # the message channels, in default preference order (voice is opt-in)
_DELAY = re.compile(r"^\s*(\d+)\s*(m|min|h|d|bd)\s*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_STEPS = 100  # a campaign longer than this is a mistake; it also bounds the step-graph checks


def parse_delay(text: str | int) -> tuple[int, str]:
    """'3d' -> (3, 'd'); units: m (minutes), h (hours), d (days), bd (business days)."""
    if isinstance(text, int):
        return text, "h"
    match = _DELAY.match(str(text))
    if not match:
        raise ValueError(f"delay {text!r} is not a number followed by m, h, d or bd (e.g. '0h', '3d', '2bd')")
    amount, unit = int(match.group(1)), match.group(2)
    return amount, "m" if unit == "min" else unit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TemplateSpec(_Strict):
    """An approved WhatsApp Content template for sends outside the 24-hour window.

    `variables` maps each positional slot ("1", "2", ...) to a lead field, a custom column
    (`custom.<name>` or its bare name) or a literal (`static:<text>`). `body` is the template's
    approved text with its `{{1}}` slots, as registered with WhatsApp: the provider sends the
    template by its SID, so the body is what preview shows and what the draft records as sent.
    """

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    variables: dict[str, str] = Field(default_factory=dict)
    body: str | None = Field(default=None, min_length=1)
    # A media template (twilio/media, or twilio/card with buttons): its media URL as registered, `{{N}}` slots allowed in the path.
    media_url: str | None = Field(default=None, pattern=r"^https://[^/\s{}]+(/\S*)?$", max_length=2000)
    # Quick-reply buttons (twilio/quick-reply): their titles as registered, 1 to 10, at most 20 characters each.
    buttons: list[Annotated[str, Field(min_length=1, max_length=20)]] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _slots_mapped(self) -> TemplateSpec:
        """Every `{{N}}` slot the body, media URL or buttons show has a source in `variables`."""
        texts = [self.body or "", self.media_url or "", *self.buttons]
        unmapped = sorted({m for t in texts for m in re.findall(r"\{\{\s*([^{}\s]+)\s*\}\}", t)} - set(self.variables), key=str)
        if unmapped:
            raise ValueError(f"slot(s) {', '.join('{{' + s + '}}' for s in unmapped)} of the WhatsApp template have no source in `variables`")
        if len(set(self.buttons)) != len(self.buttons):
            raise ValueError(f"button titles must be unique, got {self.buttons}")
        return self


class Condition(_Strict):
    """An outcome of the previous step; every field given must hold. `replied_intent: any` matches any reply."""

    replied_intent: list[str] | None = None
    opened_no_reply: bool = False
    not_delivered: bool = False
    no_reply: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):  # `when: opened_no_reply`
            if value not in ("opened_no_reply", "not_delivered", "no_reply"):
                raise ValueError(f"unknown condition {value!r}: use opened_no_reply, not_delivered, no_reply or {{replied_intent: ...}}")
            return {value: True}
        if isinstance(value, dict) and isinstance(value.get("replied_intent"), str):
            return {**value, "replied_intent": [value["replied_intent"]]}
        return value

    @model_validator(mode="after")
    def _one(self) -> Condition:
        if self.replied_intent and (self.opened_no_reply or self.no_reply):
            raise ValueError("a condition cannot require a reply and no reply at once")
        if not (self.replied_intent or self.opened_no_reply or self.not_delivered or self.no_reply):
            raise ValueError("a condition needs one of replied_intent, opened_no_reply, not_delivered, no_reply")
        return self


class Branch(_Strict):
    """Where a lead goes after a step: the first branch whose `when` holds; no `when` means otherwise."""

    when: Condition | None = None
    goto: str = Field(min_length=1)


class Variant(_Strict):
    """An A/B variant of a step; leads are split by `weight` (deterministic hash of campaign, step, lead).

    Each field given replaces the step's own for the leads who draw the variant.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,30}$")
    weight: float = Field(default=1.0, gt=0)
    intent: str | None = None
    tone: str | None = None
    cta: str | None = None
    whatsapp_template: TemplateSpec | None = None
    template: str | None = Field(default=None, min_length=1)  # replaces the step's own template text
    subject: str | None = Field(default=None, min_length=1)  # replaces the step's own email subject template


class Step(_Strict):
    """One message of the sequence: composed per lead from research (`intent`), or rendered from the user's `template`."""

    name: str | None = None
    delay: str = "0h"
    channels: list[Channel] = Field(default_factory=lambda: list(CHANNELS), min_length=1)
    intent: str = ""  # what the composer is asked for; a template step needs none
    tone: str | None = None
    cta: str | None = None
    whatsapp_template: TemplateSpec | None = None
    template: str | None = Field(default=None, min_length=1)  # `{{variable}}` text: rendered, never composed
    subject: str | None = Field(default=None, min_length=1)  # email subject of a template step, `{{variables}}` allowed
    # WhatsApp free text inside the 24-hour window: an image, video or document sent with it (Twilio MediaUrl)
    media_url: str | None = Field(default=None, pattern=r"^https://\S+$", max_length=2000)
    next: list[Branch] | None = None  # branches; without it the lead goes on to the following step
    final: bool = False  # no implicit following step (a branch target that ends the sequence)
    variants: list[Variant] = Field(default_factory=list)
    agent: VoiceAgent | None = None  # a voice step: the agent that holds the call

    @field_validator("variants")
    @classmethod
    def _variants(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        if len(variants) == 1:
            raise ValueError("a step with variants needs at least two")
        return variants

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> str:
        amount, unit = parse_delay(value)
        return f"{amount}{unit}"

    @model_validator(mode="after")
    def _how_made(self) -> Step:
        """A step is composed (`intent`) or rendered (`template`); a template reaching email needs a subject."""
        if "voice" in self.channels or self.agent is not None:
            return self._voice_step()
        rendered = self.template is not None or any(v.template for v in self.variants)
        if not rendered and not self.intent.strip():
            raise ValueError("a step needs an `intent` (composed per lead) or a `template` (rendered from your text)")
        if self.template is None and any(v.template for v in self.variants):
            raise ValueError("a variant's `template` replaces the step's: give the step a `template` too")
        if (self.subject or any(v.subject for v in self.variants)) and self.template is None:
            raise ValueError("`subject` belongs to a template step (a composed step writes its own subject)")
        if self.template is not None and "email" in self.channels and not self.subject:
            raise ValueError("a template step that may go out by email needs a `subject`")
        if self.media_url and (self.template is None or "whatsapp" not in self.channels):
            raise ValueError("`media_url` goes with a template step's WhatsApp free text: give the step a `template` and the whatsapp channel")
        return self

    def _voice_step(self) -> Step:
        """A call is held by its agent: only the voice channel, no template, no variants."""
        if self.channels != ["voice"]:
            raise ValueError("a voice step calls on `channels: [voice]` only (give other channels their own campaign)")
        if self.agent is None:
            raise ValueError("a voice step needs an `agent` (name, opening_line, voicemail_message)")
        if self.template is not None or self.whatsapp_template is not None or self.variants:
            raise ValueError("a voice step is held by its agent: no template, whatsapp_template or variants")
        return self

    @property
    def is_voice(self) -> bool:
        return self.agent is not None

    @property
    def is_template(self) -> bool:
        """True when the step's messages are rendered from its template instead of composed."""
        return self.template is not None

    def message_template(self, variant: str | None) -> tuple[str, str | None]:
        """(text, email subject) templates for a lead who drew `variant`: the variant's own where given, else the step's."""
        if self.template is None:
            raise ValueError(f"step {self.name!r} is composed per lead, it has no template")
        chosen = next((v for v in self.variants if v.name == variant), None) if variant else None
        return ((chosen.template if chosen else None) or self.template, (chosen.subject if chosen else None) or self.subject)

    def template_for(self, variant: str | None) -> TemplateSpec | None:
        """The WhatsApp template for a lead who drew `variant` (None: no variant): the variant's own, else the step's."""
        chosen = next((v for v in self.variants if v.name == variant), None) if variant else None
        return (chosen.whatsapp_template if chosen else None) or self.whatsapp_template

    @property
    def delay_parts(self) -> tuple[int, str]:
        return parse_delay(self.delay)

    def delay_timedelta(self) -> timedelta:
        """Calendar length of the delay; business days count as days here and are refined by the cadence."""
        amount, unit = self.delay_parts
        return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount), "bd": timedelta(days=amount)}[unit]


class VoiceAgent(_Strict):
    """Who holds the call: a system prompt (a Markdown file), an opening line and a voicemail message.

    `opening_line` and `voicemail_message` are `{{variable}}` templates rendered per contact. `prompt_file` is relative to
    the data directory (default `agents/<name>.md`). `max_concurrent_calls` caps this agent's calls across every campaign
    (0: no cap of its own).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    prompt_file: str | None = None
    opening_line: str = Field(min_length=1)
    voicemail_message: str = Field(min_length=1)
    max_concurrent_calls: int = Field(default=0, ge=0)

    @property
    def prompt_path(self) -> str:
        return self.prompt_file or f"agents/{self.name}.md"


class Audience(_Strict):
    """Who the campaign targets, frozen at launch: the leads of its lists that its segment (and filter) select.

    `lead_list` is a file imported at launch into the list named after it; `lists` are contact lists filled with
    `outbound contacts import`. At least one of the two is needed.
    """

    lists: list[str] = Field(default_factory=list)
    lead_list: str = Field(default="", validate_default=True)
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    filter: dict[str, str | int | list[str | int]] = Field(default_factory=dict)
    segment: Segment | None = None

    @field_validator("lists")
    @classmethod
    def _lists(cls, lists: list[str]) -> list[str]:
        blank = [n for n in lists if not n.strip()]
        if blank:
            raise ValueError("a list name cannot be empty")
        return [n.strip() for n in lists]

    @field_validator("lead_list")
    @classmethod
    def _source(cls, lead_list: str, info: ValidationInfo) -> str:
        if not lead_list.strip() and not info.data.get("lists"):
            raise PydanticCustomError("missing", "Field required (or name contact lists under audience.lists)")
        return lead_list.strip()

    @property
    def list_names(self) -> list[str]:
        """The lists the audience is drawn from: the lead_list file's own list first, then `lists`."""
        return campaign_lists(self.lead_list, self.lists)

    @property
    def effective_segment(self) -> Segment:
        """The filter's conditions and the segment's together."""
        return combined_segment(self.filter, self.segment)


class SendingWindow(_Strict):
    start: time = time(8, 0)
    end: time = time(21, 0)
    days: list[str] = Field(default_factory=lambda: list(_DAYS[:5]))
    default_timezone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, days: list[str]) -> list[str]:
        bad = [d for d in days if d.lower()[:3] not in _DAYS]
        if bad or not days:
            raise ValueError(f"days must be among {', '.join(_DAYS)}; got {bad or 'nothing'}")
        return [d.lower()[:3] for d in days]

    @model_validator(mode="after")
    def _order(self) -> SendingWindow:
        if self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


def _every_day() -> SendingWindow:
    return SendingWindow(days=list(_DAYS))


class VoiceSettings(_Strict):
    """How a voice campaign dials (seed names): concurrency, retries, schedule, caller IDs and calling hours.

    `number_pool` rotates caller IDs round robin; entries that are not usable numbers are skipped with a warning.
    `phone_number` is the caller ID when the pool is empty or unusable. Calling hours are in the contact's own zone.
    """

    max_concurrent: int = Field(default=1, ge=1, le=1000)
    retry_attempts: int = Field(default=0, ge=0, le=10)
    retry_delay_minutes: int = Field(default=60, ge=1)
    scheduled_at: datetime | None = None  # no call before this time (UTC when no zone is given)
    phone_number: str | None = None
    number_pool: list[str] = Field(default_factory=list)
    ring_timeout_s: int = Field(default=30, ge=5, le=600)
    calling_hours: SendingWindow = Field(default_factory=_every_day)

    @model_validator(mode="after")
    def _caller_id(self) -> VoiceSettings:
        if not self.phone_number and not self.number_pool:
            raise ValueError("a voice campaign needs a caller ID: `phone_number` or a `number_pool`")
        return self


class CampaignLimits(_Strict):
    """Per-campaign sending limits; the organisation-wide ones come from the environment (defs/send/limits.py)."""

    max_in_flight: int | None = Field(default=None, ge=1)
    per_second: dict[Literal["email", "whatsapp", "sms"], float] = Field(default_factory=dict)


class CampaignSpec(_Strict):
    name: str
    goal: str = Field(min_length=10)
    type: Literal["drip", "oneshot", "followup"]
    approval: Literal["manual", "batch", "auto"] = "manual"
    owner_email: str = "owner@example.com"
    from_name: str | None = None
    audience: Audience
    sending_window: SendingWindow = Field(default_factory=SendingWindow)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    batch_spot_check: int = Field(default=5, ge=0)
    end_after: str | None = None  # oneshot: the campaign ends this long after launch (same units as delays)
    retry_attempts: int = Field(default=0, ge=0, le=10)
    retry_delay: str = "1h"
    limits: CampaignLimits = Field(default_factory=CampaignLimits)
    voice: VoiceSettings | None = None  # dialer settings of a campaign whose step calls

    @field_validator("end_after", "retry_delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None:
            return None
        amount, unit = parse_delay(value)
        return f"{amount}{unit}"
    reply_mode: Literal["human", "ai"] = "human"  # human: a ticket for the owner; ai: an answer draft awaiting approval
    # auto approval holds a draft with a missing template variable for a person, unless this is true
    send_with_missing: bool = False
    bounce_pause_threshold: float = Field(default=0.05, gt=0, le=1)  # bounced / sent above this pauses the campaign

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("name must be lower-case letters, digits, '-' or '_' (it becomes a partition key)")
        return name

    @model_validator(mode="after")
    def _shape(self) -> CampaignSpec:
        if self.type == "oneshot" and len(self.steps) != 1:
            raise ValueError(f"a oneshot campaign has exactly one step, this one has {len(self.steps)}")
        names = self.step_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"step names must be unique: {', '.join(duplicated)} used more than once")
        for name, step in zip(names, self.steps, strict=True):
            for branch in step.next or []:
                if branch.goto not in names:
                    raise ValueError(f"step {name!r} branches to {branch.goto!r}, which is not a step (steps: {', '.join(names)})")
                if self.type == "followup" and branch.when and branch.when.replied_intent:
                    raise ValueError(f"step {name!r}: a followup campaign drops a lead on reply; use type drip for replied_intent branches")
        if any(s.is_voice for s in self.steps):
            if len(self.steps) != 1:
                raise ValueError("a voice campaign has one voice step (retries are `voice.retry_attempts`)")
            if self.voice is None:
                raise ValueError("a voice campaign needs its `voice:` settings (at least `phone_number` or `number_pool`)")
        elif self.voice is not None:
            raise ValueError("`voice:` settings belong to a campaign whose step is on channel voice")
        cycle = self._cycle()
        if cycle:
            raise ValueError(f"steps form a cycle: {' -> '.join(cycle)} (step {cycle[0]!r} can be reached again from itself)")
        return self

    @property
    def step_names(self) -> list[str]:
        """Each step's name; unnamed steps are `step1`, `step2`, ..."""
        return [s.name or f"step{i}" for i, s in enumerate(self.steps, start=1)]

    def successors(self, touch: int) -> list[tuple[Condition | None, int]]:
        """(condition, touch) pairs tried in order after `touch`; the implicit one is the following step."""
        step = self.step(touch)
        if step.next is not None:
            index = {n: i for i, n in enumerate(self.step_names, start=1)}
            return [(b.when, index[b.goto]) for b in step.next]
        if step.final or touch >= len(self.steps):
            return []
        return [(None, touch + 1)]

    def _cycle(self) -> list[str]:
        """The first cycle in the step graph, as step names, or [].

        Depth-first with an explicit stack, so a long chain of steps cannot exhaust Python's recursion limit.
        """
        names = self.step_names
        done: set[int] = set()
        for start in range(1, len(self.steps) + 1):
            if start in done:
                continue
            path, on_path = [start], {start}
            pending = [iter([t for _, t in self.successors(start)])]
            while pending:
                nxt = next(pending[-1], None)
                if nxt is None:
                    pending.pop()
                    finished = path.pop()
                    on_path.discard(finished)
                    done.add(finished)
                elif nxt in on_path:
                    return [names[t - 1] for t in [*path[path.index(nxt):], nxt]]
                elif nxt not in done:
                    path.append(nxt)
                    on_path.add(nxt)
                    pending.append(iter([t for _, t in self.successors(nxt)]))
        return []

    @property
    def is_voice(self) -> bool:
        """A campaign of calls: its one step is on channel voice and the dialer, not the touch runs, reaches its contacts."""
        return self.voice is not None

    @property
    def n_touches(self) -> int:
        return len(self.steps)

    def step(self, touch: int) -> Step:
        """The step of a 1-based touch number."""
        if not 1 <= touch <= len(self.steps):
            raise KeyError(f"campaign {self.name!r} has no touch {touch} (it has {len(self.steps)})")
        return self.steps[touch - 1]
