"""The campaign YAML spec: what a campaign is, validated with errors that name the field."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from outbound_pipeline.providers.base import CHANNELS

_DELAY = re.compile(r"^\s*(\d+)\s*(m|min|h|d|bd)\s*$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
    """An approved WhatsApp Content template for sends outside the 24-hour window."""

    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    variables: dict[str, str] = Field(default_factory=dict)


class Step(_Strict):
    name: str | None = None
    delay: str = "0h"
    channels: list[Literal["email", "whatsapp", "sms"]] = Field(default_factory=lambda: list(CHANNELS), min_length=1)
    intent: str = Field(min_length=1)
    tone: str | None = None
    cta: str | None = None
    whatsapp_template: TemplateSpec | None = None

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> str:
        amount, unit = parse_delay(value)
        return f"{amount}{unit}"

    @property
    def delay_parts(self) -> tuple[int, str]:
        return parse_delay(self.delay)

    def delay_timedelta(self) -> timedelta:
        """Calendar length of the delay; business days count as days here and are refined by the cadence."""
        amount, unit = self.delay_parts
        return {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount), "bd": timedelta(days=amount)}[unit]


class Audience(_Strict):
    lead_list: str = Field(min_length=1)
    default_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    filter: dict[str, str | int | list[str | int]] = Field(default_factory=dict)


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


class CampaignSpec(_Strict):
    name: str
    goal: str = Field(min_length=10)
    type: Literal["drip", "oneshot", "followup"]
    approval: Literal["manual", "batch", "auto"] = "manual"
    owner_email: str = "owner@example.com"
    from_name: str | None = None
    audience: Audience
    sending_window: SendingWindow = Field(default_factory=SendingWindow)
    steps: list[Step] = Field(min_length=1)
    batch_spot_check: int = Field(default=5, ge=0)

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
        return self

    @property
    def n_touches(self) -> int:
        return len(self.steps)

    def step(self, touch: int) -> Step:
        """The step of a 1-based touch number."""
        if not 1 <= touch <= len(self.steps):
            raise KeyError(f"campaign {self.name!r} has no touch {touch} (it has {len(self.steps)})")
        return self.steps[touch - 1]
