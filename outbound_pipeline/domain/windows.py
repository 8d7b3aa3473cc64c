"""Sending windows in the recipient's local time."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from outbound_pipeline.domain.spec import SendingWindow

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def is_open(window: SendingWindow, timezone: str | None, now_utc: datetime) -> bool:
    """True when `now_utc` falls inside the window in the lead's zone (the window's default zone if unknown)."""
    zone = _zone(timezone or "") or _zone(window.default_timezone) or ZoneInfo("UTC")
    local = now_utc.replace(tzinfo=UTC).astimezone(zone)
    return _DAYS[local.weekday()] in window.days and window.start <= local.time() < window.end


def open_mask(window: SendingWindow, timezones: pd.Series, now_utc: datetime) -> pd.Series:
    """`is_open` for a column of zones, computed once per distinct zone."""
    verdict = {tz: is_open(window, tz, now_utc) for tz in timezones.fillna("").unique()}
    return timezones.fillna("").map(verdict).astype(bool)
