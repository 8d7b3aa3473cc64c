"""Small readers shared by the providers' payload parsers: timestamps and detail JSON as the tables keep them."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def naive_utc(value: Any) -> pd.Timestamp | None:
    """A naive UTC timestamp (the warehouse convention), or None when missing or unparseable."""
    if value in (None, ""):
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return None
    if ts.tzinfo is None:
        return ts
    return ts.tz_convert("UTC").tz_localize(None)


def detail_json(**items: Any) -> str:
    """An event's `detail`: the given fields that have a value, as sorted JSON."""
    return json.dumps({k: v for k, v in items.items() if v not in (None, "", {})}, sort_keys=True)


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
