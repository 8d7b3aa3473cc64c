"""Exactly-once dispatch of outbox rows.

The protocol, per chunk of messages:
1. the outbox row exists (status `pending`) before anything else happens;
2. the chunk is marked `sending` (with its provider and attempt count) and committed;
3. the provider is called, with the send id as idempotency key;
4. results are written back (`sent` / `failed`) and committed.

A crash between 2 and 4 leaves rows in `sending`. The next run asks the provider
whether it already accepted each one (`reconcile`, else `lookup`) and only sends what it
did not, again under the same idempotency key, so nothing is ever sent twice. A row the
provider cannot answer for stays in `sending` until a later run can ask again.

Admitted messages are paced per channel (`pacing.py`): every concurrent call of the run waits
on its channel's shared rate limiter before reaching the provider. Each channel is a lane with its
own `max_concurrency` workers, so email waiting on Resend's pacing never holds a worker an SMS
or WhatsApp message could use. No connection is open while providers are called.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

import duckdb
import pandas as pd

from outbound_pipeline.domain.limits import OrgLimits, channel_rates
from outbound_pipeline.domain.outbox import SENDABLE_DECISIONS
from outbound_pipeline.domain.retry import WINDOW_CLOSED, retry_key
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.domain.windows import open_mask
from outbound_pipeline.engine.limits import admit
from outbound_pipeline.engine.pacing import ChannelPacer
from outbound_pipeline.providers.base import ChannelProvider, OutboundMessage, SendResult, WhatsAppTemplate
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.store import sends as store

CHUNK = 200  # rows marked `sending` per commit: what a crash can leave to reconcile
RESULT_COLUMNS = ["status", "provider_message_id", "message_id", "error_code", "error_message", "segments", "cost_usd", "sent_at", "updated_at"]


@dataclass
class DispatchStats:
    reconciled: int = 0
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    deferred: int = 0
    held_by_limit: dict[str, int] = field(default_factory=dict)
    uncertain: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    by_channel: dict[str, int] = field(default_factory=dict)
    paced_seconds: dict[str, float] = field(default_factory=dict)


def _threading(row) -> tuple[str | None, tuple[str, ...]]:
    """An answer to an email reply: (In-Reply-To, References) pointing at the lead's message, when known."""
    parent = getattr(row, "reply_message_id", None)
    parent = parent if isinstance(parent, str) and parent else None
    refs_json = getattr(row, "reply_thread_refs", None)
    earlier = list(reversed(json.loads(refs_json))) if isinstance(refs_json, str) and refs_json else []
    chain = tuple(dict.fromkeys([*earlier, *([parent] if parent else [])]))
    return parent, chain


def _window_closed(row) -> bool:
    """Twilio said 63016 for this WhatsApp send (re-queued by `engine.retries`): only the template may go out,
    whatever our record of the lead's last inbound message says."""
    return row.channel == "whatsapp" and getattr(row, "error_code", None) == WINDOW_CLOSED


def to_message(row, spec: CampaignSpec, sent_at: datetime | None = None) -> OutboundMessage:
    """The provider-facing message of one outbox row joined with its lead.

    `sent_at` is the pipeline clock's time of sending (simulated or real): providers judge
    time-bound rules by it, such as WhatsApp's 24-hour window and the span of a reconciliation search.
    """
    custom = json.loads(row.custom_vars or "{}")
    variables = {k: getattr(row, k) for k in ("first_name", "last_name", "company", "role", "email", "phone") if pd.notna(getattr(row, k))}
    variables.update({f"custom.{k}": v for k, v in custom.items()})
    in_reply_to, references = _threading(row)
    variant = getattr(row, "variant", None)
    step = spec.step(int(row.touch)) if int(row.touch) != REPLY_TOUCH else None
    template = step.template_for(variant if isinstance(variant, str) else None) if step else None
    return OutboundMessage(
        send_id=row.send_id, idempotency_key=retry_key(row.send_id, getattr(row, "retries", None)), campaign_id=row.campaign_id, touch=int(row.touch), lead_id=row.lead_id,
        channel=row.channel, to=row.to_address, body=row.body, subject=row.subject if pd.notna(row.subject) else None,
        reply_to=row.owner_email if pd.notna(row.owner_email) else spec.owner_email, variables=variables,
        last_inbound_at=None if _window_closed(row) else
        (row.last_inbound_at if "last_inbound_at" in row._fields and pd.notna(row.last_inbound_at) else None),
        whatsapp_template=WhatsAppTemplate(template.content_sid, dict(template.variables), template.media_url,
                                           tuple(template.buttons)) if template else None,
        media_url=step.media_url if step and row.channel == "whatsapp" else None,
        in_reply_to=in_reply_to, references=references, sent_at=sent_at,
    )


def _call(provider: ChannelProvider, message: OutboundMessage) -> SendResult | Exception:
    """Providers answer a message-level refusal with a `failed` result and raise only when the
    outcome is unknown or the fault is not the message's (timeouts, retries exhausted, bad
    credentials): such rows stay in `sending` and the next run reconciles them."""
    try:
        return provider.send(message)
    except Exception as exc:
        return exc


def results_frame(results: list[SendResult], now: datetime) -> pd.DataFrame:
    return pd.DataFrame({
        "send_id": [r.send_id for r in results],
        "status": [r.status for r in results],
        "provider_message_id": [r.provider_message_id for r in results],
        "message_id": [next((f.removeprefix("message_id:") for f in r.flags if f.startswith("message_id:")), None) for r in results],
        "error_code": [r.error_code for r in results],
        "error_message": [r.error_message for r in results],
        "segments": pd.array([r.segments for r in results], dtype="Int64"),
        "cost_usd": [float(r.cost_usd) for r in results],
        "sent_at": [now if r.status == "sent" else None for r in results],
        "updated_at": now,
    })


def _accepted(provider: ChannelProvider, message: OutboundMessage) -> SendResult | None:
    """The provider's own record of `message`: a result, None when it never accepted it, raising when it cannot tell.

    Providers that can be unsure (Twilio's list unreachable, a Resend key past its lifetime) say so through
    `reconcile`; `lookup` folds "unknown" into None, which is only safe to act on for providers without `reconcile`.
    """
    reconcile = getattr(provider, "reconcile", None)
    return reconcile(message) if callable(reconcile) else provider.lookup(message)


def reconcile_in_flight(provider_named: Callable[[str], ChannelProvider], in_flight: pd.DataFrame, spec: CampaignSpec,
                        stats: DispatchStats) -> tuple[list[SendResult], set[str]]:
    """Crash recovery: rows left in `sending` may already be with the provider.

    Returns what the provider already accepted, and the send ids it could not answer for: those stay in
    `sending` (listed in `stats.uncertain`) and are neither recorded nor sent again in this run, since
    sending one the provider did accept would deliver it twice. The rest go out again as usual.
    """
    recovered: list[SendResult] = []
    unknown: set[str] = set()
    for row in in_flight.itertuples(index=False):
        message = to_message(row, spec, sent_at=cast(datetime, row.updated_at))  # marked `sending` then
        try:
            found = _accepted(provider_named(str(row.provider)), message)
        except Exception as exc:
            unknown.add(str(row.send_id))
            stats.uncertain.append(f"{row.send_id}: not reconciled: {exc}")
            continue
        if found is not None:
            recovered.append(found)
    return recovered, unknown


def skip_suppressed(con_factory: Callable, rows: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, int]:
    """Mark rows whose lead or address is on the suppression list (opt-outs, complaints...) `suppressed`; return the rest."""
    if rows.empty:
        return rows, 0
    with con_factory() as con:
        return _skip_suppressed(con, rows, now)


def channel_pacer(spec: CampaignSpec, limits: OrgLimits, provider_for: Callable[[str], ChannelProvider],
                  channels: Iterable[str]) -> ChannelPacer:
    """The campaign's channel rates, on the wall clock for real providers and on a simulated one for the `channels` whose
    provider says it is `simulated` (the offline channel)."""
    return ChannelPacer(channel_rates(spec, limits), {ch for ch in channels if getattr(provider_for(ch), "simulated", False)})


def _skip_suppressed(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, now: datetime) -> tuple[pd.DataFrame, int]:
    hits = store.suppression_hits(con, rows)
    if not hits.empty:
        store.update_sends(con, hits.assign(status="suppressed", updated_at=now), ["status", "error_message", "updated_at"])
    return rows[~rows["send_id"].isin(hits["send_id"])], len(hits)


def _admitted(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, spec: CampaignSpec, now: datetime, limits: OrgLimits,
              stats: DispatchStats) -> pd.DataFrame:
    """The outbox rows that may go now, decided in one unit of work: suppressed ones and ones without an approval or a
    reachable lead are marked so, those outside their recipient's window wait, and the limits admit the rest in order."""
    if rows.empty:
        return rows
    rows, stats.suppressed = _skip_suppressed(con, rows, now)
    approved = rows["decision"].isin(SENDABLE_DECISIONS)
    reachable = (rows["lead_status"] == "active") & (rows["recipient_status"] == "active")
    blocked = rows[~approved | ~reachable]
    if not blocked.empty:
        reason = pd.Series("lead is " + blocked["lead_status"].astype(str), index=blocked.index)
        reason = reason.mask((blocked["lead_status"] == "active"), "recipient is " + blocked["recipient_status"].astype(str))
        reason = reason.mask(~blocked["decision"].isin(SENDABLE_DECISIONS), blocked["decision"].fillna("no approval").astype(str))
        frame = pd.DataFrame({"send_id": blocked["send_id"], "status": "suppressed", "error_message": reason, "updated_at": now})
        store.update_sends(con, frame, ["status", "error_message", "updated_at"])
        stats.suppressed += len(blocked)
    rows = rows[approved & reachable]
    window_open = open_mask(spec.sending_window, rows["timezone"], now)
    stats.deferred = int((~window_open).sum())
    rows = rows[window_open]
    admitted, stats.held_by_limit = admit(con, rows, spec, now, limits)
    return rows[admitted]


def _marks(part: pd.DataFrame, provider_for: Callable[[str], ChannelProvider], now: datetime) -> pd.DataFrame:
    """Step 2 of the protocol for `part`: `sending`, by which provider, one more attempt."""
    names = {ch: provider_for(ch).name for ch in part["channel"].unique()}
    return pd.DataFrame({"send_id": part["send_id"], "status": "sending", "provider": part["channel"].map(names),
                         "attempts": part["attempts"] + 1, "updated_at": now})


def _mark_first_chunks(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, provider_for: Callable[[str], ChannelProvider],
                       now: datetime, chunk: int) -> list[pd.DataFrame]:
    """Mark each channel's first chunk `sending` in the unit of work that decided them; returns those chunks, one per channel."""
    firsts = [rows[rows["channel"] == ch].iloc[:chunk] for ch in rows["channel"].unique()]
    if firsts:
        store.update_sends(con, pd.concat([_marks(part, provider_for, now) for part in firsts]),
                           ["status", "provider", "attempts", "updated_at"])
    return firsts


class _Recorder:
    """Step 4 for every lane: results wait for the file together, so lanes finishing at once are written in one unit of work."""

    def __init__(self, con_factory: Callable, db_lock: threading.Lock):
        self._con_factory, self._db_lock = con_factory, db_lock
        self._pending: list[SendResult] = []
        self._lock = threading.Lock()

    def record(self, done: list[SendResult], now: datetime) -> None:
        """Write `done` (and whatever other lanes left pending meanwhile) before returning."""
        with self._lock:
            self._pending.extend(done)
        with self._db_lock:
            with self._lock:
                if not self._pending:  # another lane wrote them with its own
                    return
            with self._con_factory() as con:
                with self._lock:  # what other lanes added while the file was awaited goes too
                    results, self._pending = self._pending, []
                lead_marks = pd.DataFrame([(r.send_id, r.lead_status) for r in results if r.lead_status], columns=["send_id", "lead_status"])
                store.record_results(con, results_frame(results, now), RESULT_COLUMNS, lead_marks)


def dispatch(con_factory: Callable, provider_for: Callable[[str], ChannelProvider], provider_named: Callable[[str], ChannelProvider],
             spec: CampaignSpec, touch: int, now: datetime, max_concurrency: int = 16, chunk: int = CHUNK,
             limits: OrgLimits | None = None, pacer: ChannelPacer | None = None,
             prepare: Callable[[duckdb.DuckDBPyConnection], object] | None = None) -> DispatchStats:
    """Send the touch's approved outbox rows that are due, exactly once. `con_factory()` opens a short connection.

    `prepare(con)` runs first in the unit of work that reads and decides (the following send run queues there what was
    approved since its last poll, instead of opening the file once more for it).

    `pacer` defaults to the campaign's channel rates, on the wall clock for real providers and on a
    simulated one for providers that say they are `simulated` (the offline channel).
    """
    stats = DispatchStats()
    limits = limits or OrgLimits.from_env()
    chunks: list[pd.DataFrame] = []
    with con_factory() as con:  # the usual case, nothing left in flight by a crash: read, decide and mark in one unit of work
        if prepare is not None:
            prepare(con)
        rows = store.due_outbox(con, spec.name, touch)
        in_flight = rows[rows["status"] == "sending"]
        if in_flight.empty:
            rows = _admitted(con, rows, spec, now, limits, stats)
            chunks = _mark_first_chunks(con, rows, provider_for, now, chunk)
    if not in_flight.empty:
        recovered, unknown = reconcile_in_flight(provider_named, in_flight, spec, stats)  # asks providers: no connection open
        if recovered:
            with con_factory() as con:
                store.update_sends(con, results_frame(recovered, now), RESULT_COLUMNS)
            stats.reconciled = len(recovered)
        rows = rows[~rows["send_id"].isin({r.send_id for r in recovered} | unknown)]
        with con_factory() as con:
            rows = _admitted(con, rows, spec, now, limits, stats)
            chunks = _mark_first_chunks(con, rows, provider_for, now, chunk)
    if rows.empty:
        return stats
    if pacer is None:
        pacer = channel_pacer(spec, limits, provider_for, rows["channel"].unique())

    def paced_call(pm: tuple[ChannelProvider, OutboundMessage]) -> SendResult | Exception:
        pacer.wait(pm[1].channel)
        return _call(*pm)

    db_lock, stats_lock = threading.Lock(), threading.Lock()  # one write at a time; stats shared by the lanes
    recorder = _Recorder(con_factory, db_lock)

    def send_chunk(part: pd.DataFrame, marked: bool = False) -> None:
        providers = {ch: provider_for(ch) for ch in part["channel"].unique()}
        if not marked:
            with db_lock, con_factory() as con:
                store.update_sends(con, _marks(part, provider_for, now), ["status", "provider", "attempts", "updated_at"])
        messages = [(providers[row.channel], to_message(row, spec, sent_at=now)) for row in part.itertuples(index=False)]
        outcomes = map_concurrently(paced_call, messages, max_concurrency)
        done = [o for o in outcomes if isinstance(o, SendResult)]
        recorder.record(done, now)
        with stats_lock:
            for (_, msg), outcome in zip(messages, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    stats.uncertain.append(f"{msg.send_id}: {outcome}")
            for r in done:
                if r.status == "sent":
                    stats.sent += 1
                else:
                    stats.failed += 1
                stats.cost_usd += r.cost_usd
            for ch in part["channel"]:
                stats.by_channel[ch] = stats.by_channel.get(ch, 0) + 1

    def send_lane(first: pd.DataFrame) -> None:
        """One channel's messages, chunk after chunk (the first marked with the decision): its pacing holds only its own workers."""
        lane = rows[rows["channel"] == first["channel"].iloc[0]]
        send_chunk(first, marked=True)
        for start in range(chunk, len(lane), chunk):
            send_chunk(lane.iloc[start : start + chunk])

    if len(chunks) == 1:
        send_lane(chunks[0])
    elif chunks:
        with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
            for future in [pool.submit(send_lane, first) for first in chunks]:
                future.result()
    stats.paced_seconds = pacer.paced_seconds()
    return stats
