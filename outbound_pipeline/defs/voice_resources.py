"""The voice resource: which dialer and agent the dial step and the receiver use, and the organisation's call limits.

Twilio when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and OUTBOUND_PUBLIC_BASE_URL are set, else the offline simulation.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from outbound_pipeline import settings
from outbound_pipeline.domain.dialer import DEFAULT_ORG_LIMIT, DEFAULT_PRICE_PER_MINUTE
from outbound_pipeline.engine.dialer import DialConfig
from outbound_pipeline.providers.base import VoiceDialer


def _env(name: str) -> dg.EnvVar | None:
    """An `EnvVar` when set, so the secret's value is never shown or stored in run config."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def voice_dirs(landing_dir: Path) -> tuple[Path, Path]:
    """(where the receiver lands call callbacks and relay turns, where the dial step leaves each call's context)."""
    return landing_dir / "voice", landing_dir / "voice_calls"


class VoiceService(dg.ConfigurableResource):
    """Calls through Twilio with credentials and a public URL, else simulated; limits and price from the environment."""

    offline_ledger_dir: str = str(settings.offline_ledger_dir())
    landing_dir: str = str(settings.landing_dir())
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_base_url: str | None = None
    public_base_url: str | None = None
    org_limit: int = DEFAULT_ORG_LIMIT
    price_per_minute: float = DEFAULT_PRICE_PER_MINUTE
    provisioned_numbers: list[str] | None = None

    @classmethod
    def from_env(cls) -> VoiceService:
        numbers = [n.strip() for n in os.environ.get("TWILIO_VOICE_NUMBERS", "").split(",") if n.strip()]
        return cls(offline_ledger_dir=str(settings.offline_ledger_dir()), landing_dir=str(settings.landing_dir()),
                   twilio_account_sid=_env("TWILIO_ACCOUNT_SID"), twilio_auth_token=_env("TWILIO_AUTH_TOKEN"),
                   twilio_base_url=os.environ.get("OUTBOUND_TWILIO_BASE_URL") or None,
                   public_base_url=os.environ.get("OUTBOUND_PUBLIC_BASE_URL") or None,
                   org_limit=int(os.environ.get("OUTBOUND_VOICE_RATE_LIMIT", DEFAULT_ORG_LIMIT)),
                   price_per_minute=float(os.environ.get("OUTBOUND_VOICE_PRICE_PER_MINUTE", DEFAULT_PRICE_PER_MINUTE)),
                   provisioned_numbers=numbers or None)

    @property
    def live(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.public_base_url)

    def dialer(self) -> VoiceDialer:
        if self.live:
            from outbound_pipeline.providers.voice_twilio import TwilioVoice

            return TwilioVoice(str(self.twilio_account_sid), str(self.twilio_auth_token), str(self.public_base_url), self.twilio_base_url)
        from outbound_pipeline.providers.voice_offline import OfflineVoice

        return OfflineVoice(self.offline_ledger_dir)

    def config(self, data_dir: str | Path) -> DialConfig:
        landing_dir = Path(self.landing_dir)
        voice_landing, contexts = voice_dirs(landing_dir)
        return DialConfig(voice_landing_dir=voice_landing, contexts_dir=contexts, main_landing_dir=landing_dir, data_dir=Path(data_dir),
                          org_limit=self.org_limit, price_per_minute=self.price_per_minute,
                          provisioned_numbers=tuple(self.provisioned_numbers) if self.provisioned_numbers else None)
