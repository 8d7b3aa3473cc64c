"""Offline channel: a deterministic provider simulation for email, WhatsApp and SMS.

It behaves like a real provider from the pipeline's point of view:
- it keeps its own durable ledger of accepted messages, keyed by idempotency key, so
  a retried send returns the original answer instead of sending twice;
- what happens to each message afterwards (delivered, opened, read, replied, bounced,
  opted out, failed) is drawn from a seed of the send, over a simulated timeline that
  starts at the send time, and revealed by `poll_events` only once the clock reaches it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from outbound_pipeline import settings
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import OutboundMessage, SendResult
from outbound_pipeline.providers.sms_segments import SMS_PRICE_PER_SEGMENT_USD, count_segments

# Funnel rates per channel: a realistic shape, not anyone's real numbers.
FUNNEL = {
    "email": {"fail": 0.0, "bounce": 0.03, "open": 0.52, "read": 0.0, "reply": 0.09, "optout": 0.015},
    "whatsapp": {"fail": 0.02, "bounce": 0.0, "open": 0.0, "read": 0.80, "reply": 0.16, "optout": 0.02},
    "sms": {"fail": 0.03, "bounce": 0.0, "open": 0.0, "read": 0.0, "reply": 0.07, "optout": 0.03},
}
COST_USD = {"email": 0.0009, "whatsapp": 0.005, "sms": SMS_PRICE_PER_SEGMENT_USD}  # sms: per segment
REPLIES = {
    "interested": ["Sounds interesting - does Tuesday at 10 work for a call?", "Yes, happy to talk. Send me a time next week.",
                   "Good timing actually. Let's do the 20 minutes."],
    "question": ["How does this work with our existing carriers?", "What does it cost for a team our size?"],
    "not_now": ["Not right now, maybe next quarter.", "Busy with peak season, ping me in January."],
    "not_interested": ["Thanks, but we're not looking at this.", "No thanks, we built our own."],
    "out_of_office": ["I am out of the office until Monday with limited access to email."],
}
INTENT_SPLIT = [("interested", 0.35), ("question", 0.20), ("not_now", 0.20), ("not_interested", 0.15), ("out_of_office", 0.10)]
OPT_OUT_TEXT = {"email": "Please remove me from your list.", "whatsapp": "STOP", "sms": "stop."}
FAIL_CODE = {"whatsapp": ("63024", "Invalid message recipient"), "sms": ("30003", "Unreachable destination handset")}


def _uniforms(send_id: str) -> list[float]:
    """Eight independent numbers in [0, 1) drawn from the send id."""
    digest = hashlib.sha256(f"offline-funnel\x1f{send_id}".encode()).digest()
    return [int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _pick_intent(u: float) -> str:
    acc = 0.0
    for intent, share in INTENT_SPLIT:
        acc += share
        if u < acc:
            return intent
    return INTENT_SPLIT[-1][0]


def _between(u: float, low: timedelta, high: timedelta) -> timedelta:
    return low + (high - low) * u


class OfflineChannel:
    """Simulated email, WhatsApp and SMS provider with a durable, idempotent ledger."""

    name = "offline"
    channels = ("email", "whatsapp", "sms")
    simulated = True  # dispatch paces it on a simulated clock: nothing waits
    # Tracking asks no more about a message once its timeline has ended: a failure, bounce, opt-out or reply,
    # or the longest timeline (delivered within 3 min, engaged within 30 h, replied within 40 h more) has passed.
    final_events = {ch: frozenset({"failed", "bounced", "opted_out", "replied"}) for ch in ("email", "whatsapp", "sms")}
    settles_within = timedelta(hours=71)

    def __init__(self, ledger_dir: str | Path | None = None, unsubscribe_link: Callable[[str], str] | None = None):
        """`unsubscribe_link` (send id -> URL with the receiver's token) is recorded with every email, as the
        `List-Unsubscribe` header a real provider would have sent."""
        self.ledger_path = Path(ledger_dir or settings.offline_ledger_dir()) / "accepted.jsonl"
        self.unsubscribe_link = unsubscribe_link
        self._lock = threading.Lock()
        self._known: dict[str, dict] | None = None

    # ------------------------------------------------------------------ ledger
    def _load(self) -> dict[str, dict]:
        if self._known is None:
            self._known = {}
            if self.ledger_path.exists():
                for line in self.ledger_path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        entry = json.loads(line)
                        self._known.setdefault(entry["idempotency_key"], entry)
        return self._known

    def _append(self, entry: dict) -> None:
        """Written and flushed before `send` returns: the record survives the sender being killed.

        (Not fsynced: like a real provider's state, it is not the pipeline's to lose on power failure.)
        """
        self.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        with self.ledger_path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.write(json.dumps(entry) + "\n")
            handle.flush()

    def accepted_keys(self) -> list[str]:
        """Every idempotency key the simulated provider ever accepted, in order, duplicates included."""
        if not self.ledger_path.exists():
            return []
        return [json.loads(line)["idempotency_key"] for line in self.ledger_path.read_text(encoding="utf-8").splitlines() if line.strip()]

    @staticmethod
    def _result(entry: dict) -> SendResult:
        return SendResult(
            send_id=entry["send_id"], status=entry["status"], provider="offline",
            provider_message_id=entry["provider_message_id"], error_code=entry.get("error_code"),
            error_message=entry.get("error_message"), cost_usd=entry["cost_usd"], segments=entry.get("segments"),
        )

    # ------------------------------------------------------------------ interface
    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            known = self._load().get(message.idempotency_key)
            if known:
                return self._result(known)
            u = _uniforms(message.send_id)
            failed = u[0] < FUNNEL[message.channel]["fail"]
            # The carriers' count (GSM-7 or UCS-2, 160/153 or 70/67 per part), as Twilio bills and preview estimates.
            segments = count_segments(message.body)[1] if message.channel == "sms" else None
            code, reason = FAIL_CODE.get(message.channel, (None, None)) if failed else (None, None)
            entry: dict[str, Any] = {
                "idempotency_key": message.idempotency_key,
                "send_id": message.send_id,
                "provider_message_id": stable_id("off", message.idempotency_key),
                "status": "failed" if failed else "sent",
                "error_code": code,
                "error_message": reason,
                "cost_usd": 0.0 if failed else COST_USD[message.channel] * (1 if segments is None else segments),
                "segments": segments,
            }
            if message.channel == "email" and self.unsubscribe_link is not None:
                entry["headers"] = self.unsubscribe_headers(message.send_id)
            self._append(entry)
            self._load()[message.idempotency_key] = entry
            return self._result(entry)

    def unsubscribe_headers(self, send_id: str) -> dict[str, str]:
        """The RFC 8058 one-click headers an email for `send_id` carries (empty without a link builder)."""
        if self.unsubscribe_link is None:
            return {}
        return {"List-Unsubscribe": f"<{self.unsubscribe_link(send_id)}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        with self._lock:
            self._known = None  # another process may have written since we last read
            known = self._load().get(message.idempotency_key)
        return self._result(known) if known else None

    def poll_events(self, sends: pd.DataFrame, until: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The simulated timeline of every sent message, cut at `until`."""
        events: list[dict] = []
        replies: list[dict] = []
        rows = sends[(sends["provider"] == self.name) & sends["sent_at"].notna()]
        for row in rows.itertuples(index=False):
            self._simulate(row, events, replies)
        event_frame = pd.DataFrame(events, columns=EVENT_COLUMNS)
        reply_frame = pd.DataFrame(replies, columns=REPLY_COLUMNS)
        until = pd.Timestamp(until).tz_localize(None) if pd.Timestamp(until).tzinfo else pd.Timestamp(until)
        return (event_frame[event_frame["occurred_at"] <= until].reset_index(drop=True),
                reply_frame[reply_frame["received_at"] <= until].reset_index(drop=True))

    def _simulate(self, row, events: list[dict], replies: list[dict]) -> None:
        u = _uniforms(row.send_id)
        rates = FUNNEL[row.channel]
        t0 = pd.Timestamp(row.sent_at).to_pydatetime()
        base = {"send_id": row.send_id, "campaign_id": row.campaign_id, "touch": row.touch, "lead_id": row.lead_id,
                "channel": row.channel, "provider": self.name}

        def event(kind: str, at: datetime, detail: dict | None = None) -> None:
            events.append({**base, "event_id": stable_id("evt", row.send_id, kind), "event_type": kind, "occurred_at": at,
                           "detail": json.dumps(detail or {"provider_message_id": row.provider_message_id})})

        if row.status == "failed":
            event("failed", t0, {"error_code": row.error_code})
            return
        event("sent", t0)
        if u[1] < rates["bounce"]:
            event("bounced", t0 + _between(u[2], timedelta(seconds=20), timedelta(minutes=10)), {"bounce_type": "hard"})
            return
        delivered_at = t0 + _between(u[2], timedelta(seconds=3), timedelta(minutes=3))
        event("delivered", delivered_at)
        engaged_at = delivered_at + _between(u[3], timedelta(minutes=2), timedelta(hours=30))
        if u[4] < rates["open"]:
            event("opened", engaged_at)
        if u[4] < rates["read"]:
            event("read", engaged_at)
        touch_decay = 0.8 ** (int(row.touch) - 1)
        reply_at = max(engaged_at, delivered_at) + _between(u[5], timedelta(minutes=5), timedelta(hours=40))
        if u[6] < rates["optout"]:
            event("opted_out", reply_at)
            if row.channel != "email":
                replies.append({**base, "reply_id": stable_id("rpl", row.send_id), "from_address": row.to_address,
                                "body": OPT_OUT_TEXT[row.channel], "intent": "unknown", "received_at": reply_at})
            return
        if u[6] < rates["optout"] + rates["reply"] * touch_decay:
            intent = _pick_intent(u[7])
            options = REPLIES[intent]
            body = options[int(u[3] * len(options)) % len(options)]
            replies.append({**base, "reply_id": stable_id("rpl", row.send_id), "from_address": row.to_address,
                            "body": body, "intent": "unknown", "received_at": reply_at})


EVENT_COLUMNS = ["event_id", "send_id", "campaign_id", "touch", "lead_id", "channel", "event_type", "occurred_at", "provider", "detail"]
REPLY_COLUMNS = ["reply_id", "send_id", "campaign_id", "touch", "lead_id", "channel", "from_address", "body", "intent", "received_at", "provider"]
