"""Stable identifiers: the same inputs always give the same id, so re-runs never duplicate rows."""

from __future__ import annotations

import hashlib

import pandas as pd


def stable_id(prefix: str, *parts: object) -> str:
    """A short, readable, deterministic id such as `snd_3f2a...`."""
    digest = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]
    return f"{prefix}_{digest}"


def stable_ids(prefix: str, *columns: pd.Series) -> pd.Series:
    """Vectorised `stable_id` over aligned columns."""
    joined = columns[0].astype(str)
    for col in columns[1:]:
        joined = joined + "\x1f" + col.astype(str)
    return joined.map(lambda s: f"{prefix}_{hashlib.sha1(s.encode()).hexdigest()[:16]}")


def unit_interval(*parts: object) -> float:
    """A deterministic number in [0, 1) for seeding simulations."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
