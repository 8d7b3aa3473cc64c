"""The dialer's rules: contact statuses, the effective concurrency limit, who is dialled next, call results, retries,
caller-ID rotation and per-minute cost. Pure: the engine feeds it rows and applies what it decides."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from outbound_pipeline.domain.spec import SendingWindow
from outbound_pipeline.domain.windows import is_open

STATUSES = ("pending", "calling", "completed", "failed", "no_answer", "voicemail")
FINAL = ("completed", "voicemail")  # never retried
RETRIED = ("failed", "no_answer")  # retried after the delay while attempts remain
NO_COMPLETION_TIMEOUT = timedelta(minutes=5)  # a call not answered and not completed by then is no_answer
MAX_CALL_LENGTH = timedelta(minutes=30)  # an answered call with no completion by then is closed as completed
DEFAULT_ORG_LIMIT = 10
DEFAULT_PRICE_PER_MINUTE = 0.013  # USD, outbound US, billed per started minute
OUTCOMES = ("interested", "call_back_later", "not_interested", "wrong_person", "do_not_call")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
IN_PROGRESS = ("queued", "initiated", "ringing", "in-progress", "answered")
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other")


def effective_limit(campaign_max: int, org_limit: int = DEFAULT_ORG_LIMIT, agent_max: int = 0) -> int:
    """min(campaign max_concurrent, org outbound_rate_limit, agent max_concurrent_calls or no cap)."""
    return min(campaign_max, org_limit, agent_max if agent_max > 0 else math.inf)  # type: ignore[return-value]


@dataclass(frozen=True)
class Candidate:
    """A contact that could be dialled now: `ready_at` orders it (queued time, or when its retry came due)."""

    campaign_id: str
    lead_id: str
    ready_at: datetime
    seq: int
    timezone: str | None = None
    attempts: int = 0  # calls placed to the contact so far


@dataclass(frozen=True)
class CampaignLoad:
    """One running voice campaign as the dialer sees it: its caps, calls in flight, and contacts ready now (FIFO)."""

    campaign_id: str
    max_concurrent: int
    agent: str
    agent_max: int
    in_flight: int
    ready: Sequence[Candidate]
    calling_hours: SendingWindow | None = None


def pick(campaigns: Sequence[CampaignLoad], now: datetime, org_limit: int = DEFAULT_ORG_LIMIT) -> list[Candidate]:
    """The contacts to dial now, never passing any limit: per campaign, per agent (all its campaigns), per organisation.

    Campaigns take turns one contact at a time, so one long list does not starve the others; inside a campaign, the
    earliest-ready contact goes first. A contact outside its calling hours waits (it is not skipped for good).
    """
    org_busy = sum(c.in_flight for c in campaigns)
    agent_busy: dict[str, int] = defaultdict(int)
    agent_cap: dict[str, int] = {}
    for c in campaigns:
        agent_busy[c.agent] += c.in_flight
        agent_cap[c.agent] = min(agent_cap.get(c.agent, c.agent_max or 10**9), c.agent_max or 10**9)
    queues = {c.campaign_id: iter(sorted(c.ready, key=lambda k: (k.ready_at, k.seq))) for c in campaigns}
    busy = {c.campaign_id: c.in_flight for c in campaigns}
    chosen: list[Candidate] = []
    active = list(campaigns)
    while active and org_busy < org_limit:
        still = []
        for c in active:
            if org_busy >= org_limit:
                break
            if busy[c.campaign_id] >= c.max_concurrent or agent_busy[c.agent] >= agent_cap[c.agent]:
                continue
            nxt = next((k for k in queues[c.campaign_id]
                        if c.calling_hours is None or is_open(c.calling_hours, k.timezone, now)), None)
            if nxt is None:
                continue
            chosen.append(nxt)
            busy[c.campaign_id] += 1
            agent_busy[c.agent] += 1
            org_busy += 1
            still.append(c)
        active = still
    return chosen


def call_result(call_status: str | None, answered_by: str | None) -> str | None:
    """The contact status a Twilio call ends in, or None while it is still going.

    A machine that answered (after the beep the voicemail was left) is `voicemail`; a fax cannot take a message and
    counts as `failed`; busy, failed and cancelled calls are `failed`; an unanswered ring is `no_answer`.
    """
    status = (call_status or "").lower()
    if status in IN_PROGRESS or not status:
        return None
    if status == "completed":
        if answered_by in MACHINE:
            return "voicemail"
        if answered_by == "fax":
            return "failed"
        return "completed"
    if status == "no-answer":
        return "no_answer"
    return "failed"  # busy, failed, canceled


def timed_out(placed_at: datetime, answered: bool, now: datetime) -> bool:
    """A call with no completion: unanswered after 5 minutes, or answered and still open past the longest call."""
    return now - placed_at >= (MAX_CALL_LENGTH if answered else NO_COMPLETION_TIMEOUT)


def next_attempt(status: str, attempts: int, retry_attempts: int, ended_at: datetime, retry_delay_minutes: int) -> datetime | None:
    """When a contact is dialled again: failed and no_answer after the delay while retries remain; never otherwise.

    `attempts` counts calls placed so far, the first included, so `retry_attempts` retries allow 1 + retry_attempts calls.
    """
    if status not in RETRIED or attempts > retry_attempts:
        return None
    return ended_at + timedelta(minutes=retry_delay_minutes)


def usable_pool(pool: Iterable[str], provisioned: Iterable[str] | None = None) -> tuple[list[str], list[str]]:
    """(numbers to rotate, entries skipped): an entry must be an E.164 number, and one of ours when we know our numbers."""
    known = set(provisioned) if provisioned is not None else None
    usable, skipped = [], []
    for entry in pool:
        number = str(entry).strip()
        if _E164.match(number) and (known is None or number in known):
            usable.append(number)
        else:
            skipped.append(str(entry))
    return usable, skipped


def caller_id(pool: Sequence[str], default: str | None, index: int) -> str:
    """The caller ID of a campaign's `index`-th call (0-based): round robin over the pool, else the default number."""
    if pool:
        return pool[index % len(pool)]
    if default:
        return default
    raise ValueError("no caller ID: the number pool has no usable number and no phone_number is set")


def billed_minutes(duration_s: int | None) -> int:
    """Calls are billed per started minute; an unanswered ring costs nothing."""
    return math.ceil(duration_s / 60) if duration_s and duration_s > 0 else 0


def call_cost(duration_s: int | None, price_per_minute: float = DEFAULT_PRICE_PER_MINUTE) -> float:
    return round(billed_minutes(duration_s) * price_per_minute, 6)


def progress(counts: dict[str, int]) -> int:
    """Percent of contacts done: reached (completed, voicemail) or out of attempts (failed, no_answer with no retry left)."""
    total = sum(counts.get(s, 0) for s in STATUSES)
    done = total - counts.get("pending", 0) - counts.get("calling", 0) - counts.get("retrying", 0)
    return round(100 * done / total) if total else 0
