"""Where things live: every path can be overridden from the environment."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("OUTBOUND_DATA_DIR", REPO_ROOT / "data"))


def duckdb_path() -> str:
    """The DuckDB file: `OUTBOUND_DUCKDB_PATH`, else data/outbound.duckdb."""
    return os.environ.get("OUTBOUND_DUCKDB_PATH", str(DATA_DIR / "outbound.duckdb"))


def campaigns_dir() -> Path:
    return Path(os.environ.get("OUTBOUND_CAMPAIGNS_DIR", DATA_DIR / "campaigns"))


def voice_path() -> Path:
    return Path(os.environ.get("OUTBOUND_VOICE_PATH", DATA_DIR / "voice.md"))


def leads_dir() -> Path:
    """Lead lists named in campaign specs are looked up here (unless absolute)."""
    return Path(os.environ.get("OUTBOUND_LEADS_DIR", DATA_DIR))


def offline_ledger_dir() -> Path:
    """The offline channel's own record of what it 'sent' (the simulated provider side)."""
    return Path(os.environ.get("OUTBOUND_OFFLINE_LEDGER_DIR", Path(duckdb_path()).parent / "offline_ledger"))


def landing_dir() -> Path:
    """Where the webhook receiver appends accepted events for sensors to ingest."""
    return Path(os.environ.get("OUTBOUND_LANDING_DIR", DATA_DIR / "landing"))


def cache_dir() -> Path:
    """Provider answers worth keeping (research results), beside the database."""
    return Path(os.environ.get("OUTBOUND_CACHE_DIR", Path(duckdb_path()).parent / "cache"))


def tracking_horizon_days() -> float:
    """How long after a message was handed over its provider is still asked about it (`OUTBOUND_TRACKING_HORIZON_DAYS`).

    Statuses settle within hours and replies within days; polling older messages would make every
    tracking tick cost the whole history of a campaign.
    """
    raw = os.environ.get("OUTBOUND_TRACKING_HORIZON_DAYS", "7")
    try:
        days = float(raw)
    except ValueError:
        raise ValueError(f"OUTBOUND_TRACKING_HORIZON_DAYS={raw!r} must be a number of days") from None
    if days <= 0:
        raise ValueError(f"OUTBOUND_TRACKING_HORIZON_DAYS={raw!r} must be more than 0")
    return days


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} must be a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must be 0 (no limit) or more")
    return value


def provider_rate(name: str, default: float) -> float:
    """Requests per second allowed to provider or channel `name` (`OUTBOUND_RATE_<NAME>`, 0: no limit).

    Raising it is how a paid plan's limit is used (e.g. OUTBOUND_RATE_EMAIL=10 for Resend at 10 requests/s).
    """
    return _positive(f"OUTBOUND_RATE_{name.upper()}", default)


def provider_in_flight(name: str, default: int) -> int:
    """Requests to provider `name` at once (`OUTBOUND_IN_FLIGHT_<NAME>`, 0: no limit)."""
    return int(_positive(f"OUTBOUND_IN_FLIGHT_{name.upper()}", default))


def stage_concurrency(stage: str, default: int) -> int:
    """Worker threads a stage (research, compose, send, track) runs provider calls on (`OUTBOUND_CONCURRENCY_<STAGE>`).

    High enough that the providers' limits, not the threads, set the pace: rate x latency calls are in flight at once.
    """
    return max(1, int(_positive(f"OUTBOUND_CONCURRENCY_{stage.upper()}", default)))


def opt_out_scope() -> str:
    """What an opt-out covers (`OUTBOUND_OPT_OUT_SCOPE`): `all` channels (default) or only the `channel` it came on."""
    from outbound_pipeline.domain.preferences import parse_scope

    return parse_scope(os.environ.get("OUTBOUND_OPT_OUT_SCOPE"))
