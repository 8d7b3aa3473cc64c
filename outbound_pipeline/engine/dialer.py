"""The dial step: one pass over every running voice campaign, so the organisation-wide limits hold across all of them.

A pass (1) reads the call callbacks and conversation turns the receiver landed since the last pass, (2) asks the
provider about calls still open, (3) closes calls with no completion in time, (4) queues new recipients and places
the calls the limits allow, (5) completes campaigns with nothing left. The database is held only for reading and
writing; never while the provider is asked or calls are placed. A contact who asked not to be called again is landed
as an opt-out reply (channel voice): the track step, the suppressions' one writer, suppresses it on every channel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import pandas as pd

from outbound_pipeline.domain import dialer as rules
from outbound_pipeline.domain.intents import OPT_OUT
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.templates import render
from outbound_pipeline.domain.windows import open_mask
from outbound_pipeline.engine.compose import lead_context, organisation_name
from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers import voice_payloads
from outbound_pipeline.providers.base import CallContext, CallRequest, CallUpdate, OpenCall, ProviderError, VoiceDialer
from outbound_pipeline.store import calls as store
from outbound_pipeline.store import landing
from outbound_pipeline.store.campaigns import transition

log = logging.getLogger(__name__)
ConnectionFactory = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
CURSOR = "voice_landing"
LANDING_BATCH = 5000
READY_SCAN = 200_000  # contacts ready per campaign looked at in one pass (calling hours are checked on them in memory)


@dataclass(frozen=True)
class DialConfig:
    """Where the receiver lands voice records and reads call contexts; organisation limits and price; where prompts live."""

    voice_landing_dir: Path
    contexts_dir: Path
    main_landing_dir: Path
    data_dir: Path
    org_limit: int = rules.DEFAULT_ORG_LIMIT
    price_per_minute: float = rules.DEFAULT_PRICE_PER_MINUTE
    provisioned_numbers: tuple[str, ...] | None = None


@dataclass
class DialStats:
    landed: int = 0
    updates: int = 0
    ended: int = 0
    timed_out: int = 0
    queued: int = 0
    placed: int = 0
    refused: int = 0
    uncertain: int = 0  # placed with no answer from the provider: left `calling`, found by its numbers or timed out
    turns: int = 0
    opt_outs: int = 0
    completed_campaigns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: int = 0


def voice_specs(con: duckdb.DuckDBPyConnection) -> list[CampaignSpec]:
    """The frozen specs of running voice campaigns."""
    return [spec for _, text in store.running_campaigns(con) if (spec := CampaignSpec.model_validate_json(text)).is_voice]


# ------------------------------------------------------------------------------------------------ results


def _merge(updates: list[CallUpdate]) -> dict[str, dict[str, Any]]:
    """Updates folded per call (by call id, else SID): the last word on status, any answer, duration, price, turns."""
    merged: dict[str, dict[str, Any]] = {}
    for u in updates:
        key = u.call_id or f"sid:{u.provider_sid}"
        cur = merged.setdefault(key, {"call_id": u.call_id, "provider_sid": u.provider_sid})
        for name, value in asdict(u).items():
            if value not in (None, (), "") and not (name == "status" and rules.call_result(cur.get("status"), None) is not None
                                                   and rules.call_result(value, None) is None):
                cur[name] = value  # a late 'ringing' never overwrites a final status
    return merged


def apply_updates(con: duckdb.DuckDBPyConnection, updates: list[CallUpdate], relay: list[dict[str, Any]],
                  specs: dict[str, CampaignSpec], now: datetime, price_per_minute: float) -> tuple[int, int, list[dict[str, Any]]]:
    """Apply provider updates and relay events to open calls; returns (calls ended, turns stored, do-not-call calls)."""
    merged = _merge(updates)
    ends = {e["call_id"]: e for e in relay if e["kind"] == "end"}
    turn_rows = [{"call_id": e["call_id"], "seq": e["seq"], "role": e["role"], "text": e["text"], "spoken_at": e["at"]}
                 for e in relay if e["kind"] == "turn"]
    ids = [m["call_id"] for m in merged.values() if m.get("call_id")] + list(ends) + [t["call_id"] for t in turn_rows]
    sids = [m["provider_sid"] for m in merged.values() if m.get("provider_sid")]
    known = store.calls_by_ids(con, ids, sids)
    if known.empty:
        return 0, 0, []  # nothing landed for calls of this database
    ours = set(known["call_id"])
    turn_rows = [t for t in turn_rows if t["call_id"] in ours]
    by_sid = {str(s): str(c) for c, s in zip(known["call_id"], known["provider_sid"], strict=True) if s is not None and pd.notna(s)}
    folded: dict[str, dict[str, Any]] = {}
    for m in merged.values():
        call_id = m.get("call_id") or by_sid.get(str(m.get("provider_sid")))
        if call_id:
            folded[call_id] = {**folded.get(call_id, {}), **m, "call_id": call_id}
    ended_calls, ended_contacts, progress_rows, dnc = [], [], [], []
    for call in records(known):
        m = folded.get(call["call_id"], {})
        end = ends.get(call["call_id"])
        for i, (role, text) in enumerate(m.get("turns") or ()):
            turn_rows.append({"call_id": call["call_id"], "seq": i + 1, "role": role, "text": text, "spoken_at": m.get("occurred_at") or now})
        heard = (end or {}).get("outcome") or m.get("outcome")  # what this batch says; landed again if a pass was cut short
        outcome = heard or call["outcome"]
        summary = (end or {}).get("summary") or m.get("summary") or call["summary"]
        if heard == "do_not_call":
            dnc.append({**call, "summary": summary})
        answered_by = m.get("answered_by") or call["answered_by"]
        status_word = m.get("status") or call["provider_status"]
        result = rules.call_result(status_word, answered_by) if call["status"] == "calling" else None
        if result is None:
            answered_at = call["answered_at"] or (m.get("occurred_at") if status_word == "in-progress" or answered_by else None)
            progress_rows.append({"call_id": call["call_id"], "provider_status": status_word, "answered_by": answered_by,
                                  "answered_at": answered_at, "outcome": outcome, "summary": summary,
                                  "provider_sid": call["provider_sid"] or m.get("provider_sid"), "updated_at": now})
            continue
        ended_at = m.get("occurred_at") or now
        duration = m.get("duration_s") if m.get("duration_s") is not None else call["duration_s"]
        cost = m.get("price_usd") if m.get("price_usd") is not None else rules.call_cost(duration, price_per_minute)
        ended_calls.append({
            "call_id": call["call_id"], "status": result, "provider_status": status_word, "answered_by": answered_by,
            "provider_sid": call["provider_sid"] or m.get("provider_sid"),
            "answered_at": call["answered_at"] or (ended_at if answered_by else None), "ended_at": ended_at,
            "duration_s": duration, "billed_minutes": rules.billed_minutes(duration), "cost_usd": cost, "outcome": outcome,
            "summary": summary, "voicemail_left": bool(m.get("voicemail_left") or (answered_by or "").startswith("machine_end")),
            "error_message": m.get("error") if result == "failed" else None, "updated_at": now})
        ended_contacts.append(_contact_result(call, result, ended_at, duration, outcome, m.get("error"), specs, now))
    if progress_rows:
        store.update_calls(con, pd.DataFrame(progress_rows), ["provider_status", "answered_by", "answered_at", "outcome", "summary",
                                                              "provider_sid", "updated_at"])
    store.record_results(con, _typed(pd.DataFrame(ended_calls)), pd.DataFrame(ended_contacts))
    return len(ended_calls), store.add_turns(con, pd.DataFrame(turn_rows)), dnc


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with None for missing values."""
    return cast(list[dict[str, Any]], frame.astype(object).where(frame.notna(), None).to_dict("records"))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("answered_at", "ended_at", "updated_at"):
        if col in frame:
            frame[col] = pd.to_datetime(frame[col])
    return frame


def _contact_result(call: dict[str, Any], result: str, ended_at: datetime, duration: int | None, outcome: str | None,
                    error: str | None, specs: dict[str, CampaignSpec], now: datetime) -> dict[str, Any]:
    spec = specs.get(call["campaign_id"])
    voice = spec.voice if spec else None
    retry_at = rules.next_attempt(result, int(call["attempt"]), voice.retry_attempts, pd.Timestamp(ended_at).to_pydatetime(),
                                  voice.retry_delay_minutes) if voice else None
    return {"campaign_id": call["campaign_id"], "lead_id": call["lead_id"], "call_id": call["call_id"], "status": result,
            "next_attempt_at": retry_at, "duration_s": duration, "outcome": outcome,
            "error_message": error if result == "failed" else None, "updated_at": now}


def close_timed_out(con: duckdb.DuckDBPyConnection, specs: dict[str, CampaignSpec], now: datetime, price_per_minute: float) -> int:
    """Calls with no completion in time: unanswered after 5 minutes → no_answer; answered past the longest call → completed."""
    open_calls = store.open_calls(con)
    rows, contacts = [], []
    for call in records(open_calls):
        answered = call["answered_at"] is not None or call["provider_status"] == "in-progress"
        if not rules.timed_out(pd.Timestamp(call["placed_at"]).to_pydatetime(), answered, now):
            continue
        result = "completed" if answered else "no_answer"
        error = None if answered else "no completion within 5 minutes"
        duration = int((now - pd.Timestamp(call["answered_at"]).to_pydatetime()).total_seconds()) if call["answered_at"] else 0
        rows.append({**{k: call[k] for k in ("call_id", "provider_sid", "provider_status", "answered_by", "answered_at", "outcome", "summary")},
                     "status": result, "ended_at": now, "duration_s": duration, "billed_minutes": rules.billed_minutes(duration),
                     "cost_usd": rules.call_cost(duration, price_per_minute), "voicemail_left": False,
                     "error_message": error, "updated_at": now})
        contacts.append({**_contact_result(call, result, now, duration, call["outcome"], None, specs, now), "error_message": error})
    store.record_results(con, _typed(pd.DataFrame(rows)), pd.DataFrame(contacts))
    return len(rows)


def opt_out_records(calls: list[dict[str, Any]], phones: dict[str, str], now: datetime) -> list[dict[str, Any]]:
    """Landing records, one per do-not-call call: an opt-out reply on the voice channel, for the track step to suppress."""
    records = []
    for call in calls:
        reply_id = stable_id("rep", call["call_id"], "do_not_call")
        row = {"reply_id": reply_id, "send_id": None, "campaign_id": call["campaign_id"], "touch": None, "lead_id": call["lead_id"],
               "channel": "voice", "from_address": phones.get(call["lead_id"]) or call["to_number"],
               "body": f"asked not to be called again: {call.get('summary') or ''}"[:500], "intent": OPT_OUT,
               "received_at": pd.Timestamp(now).isoformat(), "provider": "voice", "thread_refs": None, "message_id": None}
        records.append(landing.make_record("polled_reply", f"voice:{reply_id}", row))
    return records


# ------------------------------------------------------------------------------------------------ placing


@dataclass(frozen=True)
class PlannedCall:
    call_id: str
    campaign_id: str
    lead_id: str
    attempt: int
    request: CallRequest


def _prompt(config: DialConfig, path: str) -> str:
    file = config.data_dir / path
    return file.read_text(encoding="utf-8") if file.is_file() else ""


def plan_calls(con: duckdb.DuckDBPyConnection, specs: list[CampaignSpec], config: DialConfig, now: datetime,
               stats: DialStats) -> list[PlannedCall]:
    """Queue new recipients, then choose the calls to place now within every limit, with caller ID and rendered lines."""
    flying = store.in_flight(con)
    loads, pools, warnings = [], {}, {}
    for spec in specs:
        voice = spec.voice
        assert voice is not None
        stats.queued += store.enqueue_contacts(con, spec.name, now)
        if voice.scheduled_at is not None and now < voice.scheduled_at.replace(tzinfo=None):
            continue
        usable, skipped = rules.usable_pool(voice.number_pool, config.provisioned_numbers)
        if skipped:
            warnings[spec.name] = f"{spec.name}: number pool entries skipped (not one of our E.164 numbers): {', '.join(skipped)}"
        pools[spec.name] = usable
        agent = spec.steps[0].agent
        assert agent is not None
        ready = store.ready_contacts(con, spec.name, now, READY_SCAN)
        if not ready.empty:  # inside calling hours first, so contacts waiting for their morning never block the others
            ready = ready[open_mask(voice.calling_hours, ready["timezone"], now).to_numpy()].head(config.org_limit + voice.max_concurrent)
        loads.append(rules.CampaignLoad(
            campaign_id=spec.name, max_concurrent=voice.max_concurrent, agent=agent.name, agent_max=agent.max_concurrent_calls,
            in_flight=flying.get(spec.name, 0), calling_hours=voice.calling_hours,
            ready=[rules.Candidate(spec.name, str(r["lead_id"]), pd.Timestamp(r["ready_at"]).to_pydatetime(), int(r["seq"]),
                                   r["timezone"] if isinstance(r["timezone"], str) else None, int(r["attempts"]))
                   for r in records(ready)]))
    chosen = rules.pick(loads, now, config.org_limit)
    if not chosen:
        return []
    by_name = {s.name: s for s in specs}
    leads = store.lead_variables(con, [c.lead_id for c in chosen]).drop_duplicates("lead_id").set_index("lead_id")
    snippets = {cid: store.lead_snippets(con, cid, [c.lead_id for c in chosen if c.campaign_id == cid]) for cid in {c.campaign_id for c in chosen}}
    rotation = {cid: store.placed_count(con, cid) for cid in {c.campaign_id for c in chosen}}
    stats.warnings.extend(w for name, w in warnings.items() if rotation.get(name) == 0)  # said once, with the campaign's first calls
    planned = []
    for cand in chosen:
        spec = by_name[cand.campaign_id]
        voice, step, agent = spec.voice, spec.steps[0], spec.steps[0].agent
        assert voice is not None and agent is not None
        lead = cast(dict[str, Any], leads.loc[cand.lead_id].to_dict()) | {"lead_id": cand.lead_id}
        context = lead_context(lead, spec, spec.step_names[0], organisation_name(spec))
        attempt = cand.attempts + 1
        call_id = stable_id("call", cand.campaign_id, cand.lead_id, attempt)
        from_number = rules.caller_id(pools[cand.campaign_id], voice.phone_number, rotation[cand.campaign_id])
        rotation[cand.campaign_id] += 1
        ctx = CallContext(call_id=call_id, campaign_id=spec.name, lead_id=cand.lead_id, attempt=attempt, agent=agent.name,
                          system_prompt=_prompt(config, agent.prompt_path), opening_line=render(agent.opening_line, context).text,
                          voicemail_message=render(agent.voicemail_message, context).text, goal=spec.goal, cta=step.cta,
                          first_name=context.get("first_name", ""), snippets=tuple(snippets[spec.name].get(cand.lead_id, [])))
        planned.append(PlannedCall(call_id, spec.name, cand.lead_id, attempt,
                                   CallRequest(to=str(lead["phone"]), from_=from_number, ring_timeout_s=voice.ring_timeout_s,
                                               placed_at=now, context=ctx)))
    return planned


def write_context(contexts_dir: Path, context: CallContext) -> None:
    """The call's context for the receiver (TwiML, voicemail, the relay's agent), which never opens the database."""
    contexts_dir.mkdir(parents=True, exist_ok=True)
    path = contexts_dir / f"{context.call_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(context), sort_keys=True))
    tmp.replace(path)


def calls_frame(planned: list[PlannedCall], provider: str, now: datetime) -> pd.DataFrame:
    """The calls about to be placed, recorded `calling` before the provider is asked: a call placed just before a crash is
    then still known (reconciled by its number) instead of being placed again."""
    return pd.DataFrame([{"call_id": c.call_id, "campaign_id": c.campaign_id, "lead_id": c.lead_id, "attempt": c.attempt,
                          "provider": provider, "provider_sid": None, "from_number": c.request.from_, "to_number": c.request.to,
                          "status": "calling", "provider_status": "placing", "placed_at": now, "error_message": None,
                          "updated_at": now} for c in planned])


def place_calls(planned: list[PlannedCall], voice: VoiceDialer, contexts_dir: Path, now: datetime,
                specs: dict[str, CampaignSpec]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Place each call (the database is not held). Returns (accepted: call_id, provider_sid; refused calls ended `failed`
    with the provider's reason; their contacts, with the retry time while retries remain)."""
    accepted, refused, contacts = [], [], []
    for call in planned:
        write_context(contexts_dir, call.request.context)
        try:
            accepted.append({"call_id": call.call_id, "provider_sid": voice.place(call.request), "provider_status": "queued",
                             "updated_at": now})
        except ProviderError as exc:
            if exc.status is None or exc.status >= 500:  # no answer, or the provider's own failure: the call may exist
                log.warning("placing %s: the provider's answer is unknown (%s); reconciled by its numbers next pass", call.call_id, exc)
                continue
            error = f"{exc.code}: {exc.message}"
            refused.append({"call_id": call.call_id, "provider_sid": None, "status": "failed", "provider_status": None, "answered_by": None,
                            "answered_at": None, "ended_at": now, "duration_s": 0, "billed_minutes": 0, "cost_usd": 0.0,
                            "outcome": None, "summary": None, "voicemail_left": False, "error_message": error, "updated_at": now})
            contacts.append(_contact_result({"campaign_id": call.campaign_id, "lead_id": call.lead_id, "call_id": call.call_id,
                                             "attempt": call.attempt}, "failed", now, 0, None, error, specs, now))
    return pd.DataFrame(accepted), _typed(pd.DataFrame(refused)), pd.DataFrame(contacts)


# ------------------------------------------------------------------------------------------------ the pass


def _landed(config: DialConfig, con: duckdb.DuckDBPyConnection) -> tuple[list[CallUpdate], list[dict[str, Any]], str | None, int]:
    start = store.cursor(con, CURSOR)
    records, end = landing.read_since(start, config.voice_landing_dir, limit=LANDING_BATCH)
    updates = [u for r in records if r.get("source") == voice_payloads.CALL_SOURCE and (u := voice_payloads.call_update(r))]
    relay = [e for r in records if r.get("source") == voice_payloads.RELAY_SOURCE and (e := voice_payloads.relay_event(r))]
    return updates, relay, end, len(records)


def dial(connect: ConnectionFactory, voice: VoiceDialer, config: DialConfig, now: datetime) -> DialStats:
    """One pass of the dialer over every running voice campaign (see the module's description)."""
    stats = DialStats()
    with connect() as con:
        specs = voice_specs(con)
        by_name = {s.name: s for s in specs}
        updates, relay, end, stats.landed = _landed(config, con)
        open_calls = store.open_calls(con)
    asked = [OpenCall(str(c["call_id"]), c["provider_sid"], str(c["to_number"]), str(c["from_number"]),
                      pd.Timestamp(c["placed_at"]).to_pydatetime()) for c in records(open_calls)]
    polled = voice.updates(asked, now) if asked else []
    stats.updates = len(updates) + len(polled)
    with connect() as con:
        stats.ended, stats.turns, dnc = apply_updates(con, [*updates, *polled], relay, by_name, now, config.price_per_minute)
        if dnc:  # landed before the cursor moves on: a pass cut short here lands them again (same ids, ingested once)
            phones = dict(zip(*store.lead_variables(con, [c["lead_id"] for c in dnc])[["lead_id", "phone"]].T.values, strict=True))
            landing.append_many(opt_out_records(dnc, phones, now), config.main_landing_dir)
        store.set_cursor(con, CURSOR, end, now)
        stats.opt_outs = len(dnc)
        stats.timed_out = close_timed_out(con, by_name, now, config.price_per_minute)
        planned = plan_calls(con, specs, config, now, stats)
        store.record_placed(con, calls_frame(planned, voice.name, now), now)
    accepted, refused, refused_contacts = place_calls(planned, voice, config.contexts_dir, now, by_name)
    stats.uncertain = len(planned) - len(accepted) - len(refused)
    with connect() as con:
        if not accepted.empty:
            store.update_calls(con, accepted, ["provider_sid", "provider_status", "updated_at"])
        store.record_results(con, refused, refused_contacts)
        stats.placed, stats.refused = len(accepted), len(refused)
        stats.in_flight = store.in_flight(con)
        stats.max_in_flight = sum(stats.in_flight.values())
        for spec in specs:
            if store.unfinished(con, spec.name) == 0:
                transition(con, spec.name, "completed", "every contact called", "pipeline", now)
                stats.completed_campaigns.append(spec.name)
    return stats
