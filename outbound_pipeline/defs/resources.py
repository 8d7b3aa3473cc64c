"""Dagster resources: the database, the clock, and each external service.

Every service resource picks its real client when its credentials are configured
(from the environment, through `EnvVar`) and the deterministic offline one otherwise,
so the same definitions run a demo on a laptop and a real campaign in production.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from outbound_pipeline import settings
from outbound_pipeline.defs.voice_resources import VoiceService
from outbound_pipeline.domain.loader import get_campaign
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.voice import Voice, load_voice
from outbound_pipeline.providers.base import ChannelProvider, Composer, IntentClassifier, ResearchProvider
from outbound_pipeline.providers.concurrency import ProviderLimit, shared_limit
from outbound_pipeline.store import changes, warehouse


class Warehouse(dg.ConfigurableResource):
    """The store: the DuckDB file at `path`, or the DuckLake `OUTBOUND_STORE` names (`store/backend.py`).
    Connections are opened per unit of work and closed straight after."""

    path: str = settings.duckdb_path()

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path, read_only=read_only) as con:
            yield con

    def watch(self, *tables: str) -> changes.Watch:
        """Whether `tables` changed since the last look, without opening the file (`store/changes.py`)."""
        return warehouse.watch(self.path, list(tables))


class PipelineClock(dg.ConfigurableResource):
    """'Now' for the pipeline: the wall clock, or a fixed simulated instant (demo, tests, replays)."""

    now_iso: str | None = None

    def now(self) -> datetime:
        """Naive UTC, the way every timestamp is stored."""
        if self.now_iso:
            value = datetime.fromisoformat(self.now_iso)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class CampaignCatalog(dg.ConfigurableResource):
    """Where campaign YAML files and the organisation's voice live."""

    campaigns_dir: str = str(settings.campaigns_dir())
    voice_path: str = str(settings.voice_path())
    leads_dir: str = str(settings.leads_dir())

    def spec(self, name: str) -> CampaignSpec:
        return get_campaign(name, self.campaigns_dir)

    def voice(self) -> Voice:
        return load_voice(self.voice_path)

    def lead_list_path(self, spec: CampaignSpec) -> str:
        path = spec.audience.lead_list
        return path if os.path.isabs(path) else os.path.join(self.leads_dir, path)


class ResearchService(dg.ConfigurableResource):
    """Tavily when `TAVILY_API_KEY` is set, shipped sample signals otherwise."""

    tavily_api_key: str | None = None
    tavily_base_url: str | None = None
    cache_dir: str = str(settings.cache_dir() / "tavily")
    max_concurrency: int = 16  # OUTBOUND_CONCURRENCY_RESEARCH

    def limit(self) -> ProviderLimit | None:
        """Tavily's shared limit (OUTBOUND_RATE_TAVILY, OUTBOUND_IN_FLIGHT_TAVILY); none offline."""
        if not self.tavily_api_key:
            return None
        return shared_limit("tavily", settings.provider_rate("tavily", 0.0), settings.provider_in_flight("tavily", 0))

    @cached_property
    def provider(self) -> ResearchProvider:
        if self.tavily_api_key:
            from outbound_pipeline.providers.research_tavily import TavilyResearch

            return TavilyResearch(api_key=self.tavily_api_key, base_url=self.tavily_base_url, cache_dir=self.cache_dir, limit=self.limit())
        from outbound_pipeline.providers.research_offline import OfflineResearch

        return OfflineResearch()


class _OpenAIBacked(dg.ConfigurableResource):
    """Settings shared by the services that use OpenAI (or any OpenAI-compatible server) when a key is set."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    model: str = "gpt-4o-mini"
    max_concurrency: int = 16  # OUTBOUND_CONCURRENCY_COMPOSE

    @classmethod
    def from_env(cls) -> _OpenAIBacked:
        return cls(openai_api_key=_env("OPENAI_API_KEY"), openai_base_url=os.environ.get("OPENAI_BASE_URL"),
                   model=os.environ.get("OUTBOUND_OPENAI_MODEL", "gpt-4o-mini"),
                   max_concurrency=settings.stage_concurrency("compose", 16))

    def limit(self) -> ProviderLimit | None:
        """OpenAI's shared limit (OUTBOUND_RATE_OPENAI, OUTBOUND_IN_FLIGHT_OPENAI); none offline."""
        if not self.openai_api_key:
            return None
        return shared_limit("openai", settings.provider_rate("openai", 0.0), settings.provider_in_flight("openai", 0))


class ComposeService(_OpenAIBacked):
    """OpenAI (or any OpenAI-compatible server) when `OPENAI_API_KEY` is set, the rule-based composer otherwise."""

    @cached_property
    def provider(self) -> Composer:
        if self.openai_api_key:
            from outbound_pipeline.providers.compose_openai import OpenAIComposer

            return OpenAIComposer(api_key=self.openai_api_key, model=self.model, base_url=self.openai_base_url, limit=self.limit())
        from outbound_pipeline.providers.compose_offline import RuleComposer

        return RuleComposer()


class ChannelService(dg.ConfigurableResource):
    """Resend for email and Twilio for WhatsApp and SMS when configured; the offline simulation otherwise."""

    resend_api_key: str | None = None
    resend_base_url: str | None = None
    email_from: str = "Sam Rivera <sam@routewise.example>"
    unsubscribe_url: str = "http://127.0.0.1:8787/unsubscribe?send_id={send_id}"
    unsubscribe_secret: str | None = None  # OUTBOUND_UNSUBSCRIBE_SECRET; None: the generated file the receiver also reads
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = None
    whatsapp_from: str | None = None
    sms_from_numbers: list[str] = []
    status_callback_url: str | None = None
    offline_ledger_dir: str | None = None
    max_concurrency: int = 16  # per channel lane (OUTBOUND_CONCURRENCY_SEND)
    email_per_second: float = 2.0  # Resend's requests per second (OUTBOUND_RATE_EMAIL: raise it for a paid plan)
    sms_per_second_per_number: float = 1.0  # OUTBOUND_RATE_SMS_SENDER

    _cache: dict = PrivateAttr(default_factory=dict)

    def _offline(self) -> ChannelProvider:
        if "offline" not in self._cache:
            from outbound_pipeline.providers.channel_offline import OfflineChannel

            self._cache["offline"] = OfflineChannel(self.offline_ledger_dir, unsubscribe_link=self._unsubscribe_link())
        return self._cache["offline"]

    def _unsubscribe_link(self) -> Callable[[str], str]:
        """Unsubscribe URLs carrying the token the webhook receiver checks."""
        from outbound_pipeline.http import unsubscribe_tokens

        secret = unsubscribe_tokens.checked(self.unsubscribe_secret) if self.unsubscribe_secret else unsubscribe_tokens.load_secret()
        return unsubscribe_tokens.link_builder(self.unsubscribe_url, secret)

    def _resend(self) -> ChannelProvider:
        if "resend" not in self._cache:
            from outbound_pipeline.providers.email_resend import ResendEmail

            if not self.resend_api_key:
                raise ValueError("Resend is not configured: set RESEND_API_KEY")
            self._cache["resend"] = ResendEmail(api_key=self.resend_api_key, from_address=self.email_from,
                                                base_url=self.resend_base_url, unsubscribe_url=self.unsubscribe_url,
                                                unsubscribe_link=self._unsubscribe_link(), requests_per_second=self.email_per_second,
                                                max_concurrency=self.max_concurrency)
        return self._cache["resend"]

    def _twilio(self) -> ChannelProvider:
        if "twilio" not in self._cache:
            from outbound_pipeline.providers.messaging_twilio import TwilioMessaging

            if not (self.twilio_account_sid and self.twilio_auth_token):
                raise ValueError("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
            self._cache["twilio"] = TwilioMessaging(
                account_sid=self.twilio_account_sid, auth_token=self.twilio_auth_token,
                messaging_service_sid=self.twilio_messaging_service_sid, whatsapp_from=self.whatsapp_from,
                sms_from_numbers=list(self.sms_from_numbers), status_callback_url=self.status_callback_url,
                base_url=self.twilio_base_url, sms_per_second_per_number=self.sms_per_second_per_number,
                max_concurrency=self.max_concurrency, requests_per_second=settings.provider_rate("twilio", 0.0),
                in_flight=settings.provider_in_flight("twilio", 100),
            )
        return self._cache["twilio"]

    def for_channel(self, channel: str) -> ChannelProvider:
        if channel == "email" and self.resend_api_key:
            return self._resend()
        if channel in ("whatsapp", "sms") and self.twilio_account_sid and self.twilio_auth_token:
            return self._twilio()
        return self._offline()

    def by_name(self, name: str) -> ChannelProvider:
        return {"offline": self._offline, "resend": self._resend, "twilio": self._twilio}[name]()


class IntentService(_OpenAIBacked):
    """Reply intent: OpenAI (or a compatible server) when `OPENAI_API_KEY` is set, the rule-based classifier otherwise."""

    @cached_property
    def provider(self) -> IntentClassifier:
        if self.openai_api_key:
            from outbound_pipeline.providers.intent_openai import OpenAIIntentClassifier

            return OpenAIIntentClassifier(api_key=self.openai_api_key, model=self.model, base_url=self.openai_base_url)
        from outbound_pipeline.providers.intent_offline import RuleIntentClassifier

        return RuleIntentClassifier()


class InboxService(dg.ConfigurableResource):
    """The IMAP mailbox email replies arrive in (OUTBOUND_IMAP_*); unconfigured means no email reply polling."""

    host: str | None = None
    port: int = 993
    user: str | None = None
    password: str | None = None
    mailbox: str = "INBOX"
    use_ssl: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.host and self.user and self.password)

    def inbox(self):
        from outbound_pipeline.providers.inbox_imap import ImapInbox

        return ImapInbox(self.host or "", self.user or "", self.password or "", port=self.port, mailbox=self.mailbox, use_ssl=self.use_ssl)


def _env(name: str) -> dg.EnvVar | None:
    """An `EnvVar` when the variable is set (so its value is never shown or stored), else None."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources as a deployment sees them: credentials from the environment, offline without them."""
    numbers = [n.strip() for n in os.environ.get("TWILIO_SMS_FROM_NUMBERS", "").split(",") if n.strip()]
    return {
        "warehouse": Warehouse(path=settings.duckdb_path()),
        "clock": PipelineClock(now_iso=os.environ.get("OUTBOUND_NOW") or None),
        "catalog": CampaignCatalog(campaigns_dir=str(settings.campaigns_dir()), voice_path=str(settings.voice_path()),
                                   leads_dir=str(settings.leads_dir())),
        "research": ResearchService(tavily_api_key=_env("TAVILY_API_KEY"), tavily_base_url=os.environ.get("OUTBOUND_TAVILY_BASE_URL"),
                                    cache_dir=str(settings.cache_dir() / "tavily"),
                                    max_concurrency=settings.stage_concurrency("research", 16)),
        "composer": ComposeService.from_env(),
        "intent": IntentService.from_env(),
        "inbox": InboxService(host=os.environ.get("OUTBOUND_IMAP_HOST"), port=int(os.environ.get("OUTBOUND_IMAP_PORT", "993")),
                              user=os.environ.get("OUTBOUND_IMAP_USER"), password=_env("OUTBOUND_IMAP_PASSWORD"),
                              mailbox=os.environ.get("OUTBOUND_IMAP_MAILBOX", "INBOX"),
                              use_ssl=os.environ.get("OUTBOUND_IMAP_SSL", "true").lower() not in ("0", "false", "no")),
        "voice": VoiceService.from_env(),
        "channels": ChannelService(
            offline_ledger_dir=str(settings.offline_ledger_dir()),
            resend_api_key=_env("RESEND_API_KEY"),
            resend_base_url=os.environ.get("RESEND_API_URL"),
            unsubscribe_url=os.environ.get("OUTBOUND_UNSUBSCRIBE_URL", "http://127.0.0.1:8787/unsubscribe?send_id={send_id}"),
            unsubscribe_secret=_env("OUTBOUND_UNSUBSCRIBE_SECRET"),
            email_from=os.environ.get("OUTBOUND_EMAIL_FROM", "Sam Rivera <sam@routewise.example>"),
            twilio_account_sid=_env("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=_env("TWILIO_AUTH_TOKEN"),
            twilio_messaging_service_sid=_env("TWILIO_MESSAGING_SERVICE_SID"),
            twilio_base_url=os.environ.get("OUTBOUND_TWILIO_BASE_URL"),
            whatsapp_from=os.environ.get("TWILIO_WHATSAPP_FROM"),
            sms_from_numbers=numbers,
            status_callback_url=os.environ.get("TWILIO_STATUS_CALLBACK_URL"),
            max_concurrency=settings.stage_concurrency("send", 16),
            email_per_second=settings.provider_rate("email", 2.0),
            sms_per_second_per_number=settings.provider_rate("sms_sender", 1.0),
        ),
    }
