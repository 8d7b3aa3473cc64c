"""The offline voice provider: a deterministic simulated callee on the pipeline's simulated clock.

Each call's fate is drawn from its contact and attempt (`ids.unit_interval`), so a rerun gives the same calls and a
retry can go differently from the first attempt. Shares are of the order seen on cold outbound lists: about a quarter
ring out unanswered, some are busy or fail, a few never report back (the dialer's 5-minute timeout closes them), a fifth
reach voicemail, the rest are answered by a person who talks with the agent (the offline agent, or any agent given).
The placed calls are kept in a ledger directory (the simulated provider's own record), so any later run can ask.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from outbound_pipeline.ids import stable_id, unit_interval
from outbound_pipeline.providers.agent_offline import OfflineAgent
from outbound_pipeline.providers.base import CallContext, CallRequest, CallUpdate, ConversationAgent, EndCall, OpenCall

# (upper bound of the draw, fate)
FATES = ((0.24, "no-answer"), (0.31, "busy"), (0.34, "failed"), (0.37, "silent"), (0.55, "voicemail"), (1.0, "human"))
# A person who answers: (upper bound, what they say to the call to action)
PERSONAS = (
    (0.35, ["Hello?", "Yes, sounds good, go ahead and book it."]),
    (0.55, ["Hi, who is this?", "I'm in a meeting, can you call me back later?"]),
    (0.80, ["Hello.", "No thanks, we're not interested."]),
    (0.90, ["Hello?", "Sorry, wrong number, there's no one by that name here."]),
    (1.00, ["Yes?", "Please stop calling and remove my number."]),
)
WORDS_PER_SECOND = 2.5


def fate_of(lead_id: str, attempt: int) -> str:
    draw = unit_interval("callee", lead_id, attempt)
    return next(f for bound, f in FATES if draw < bound)


class OfflineVoice:
    """Simulated Twilio calls: `place` records the request, `updates` says how far each call got by `now`."""

    name = "offline"

    def __init__(self, ledger_dir: str | Path, agent: ConversationAgent | None = None):
        self.ledger = Path(ledger_dir) / "voice"
        self.agent = agent or OfflineAgent()

    def place(self, request: CallRequest) -> str:
        self.ledger.mkdir(parents=True, exist_ok=True)
        sid = "CA" + stable_id("sim", request.context.call_id)[4:].ljust(32, "0")
        record = {"sid": sid, "to": request.to, "from": request.from_, "ring_timeout_s": request.ring_timeout_s,
                  "placed_at": request.placed_at.isoformat(), "context": asdict(request.context)}
        path = self.ledger / f"{request.context.call_id}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record, sort_keys=True))
            tmp.replace(path)
        return sid

    def leave_voicemail(self, provider_sid: str, message: str) -> None:
        """The simulation leaves the message itself when the beep comes."""

    def updates(self, calls: Sequence[OpenCall], now: datetime) -> list[CallUpdate]:
        found = []
        for call in calls:
            path = self.ledger / f"{call.call_id}.json"
            if path.exists():
                update = self._simulate(json.loads(path.read_text()), now)
                if update is not None:
                    found.append(update)
        return found

    def _simulate(self, record: dict, now: datetime) -> CallUpdate | None:
        context = CallContext(**{**record["context"], "snippets": tuple(record["context"].get("snippets") or ())})
        placed = datetime.fromisoformat(record["placed_at"])
        sid, fate = record["sid"], fate_of(context.lead_id, context.attempt)
        ring = 4 + int(unit_interval("ring", context.lead_id, context.attempt) * 18)
        base = {"call_id": context.call_id, "provider_sid": sid}
        if fate == "silent":
            return CallUpdate(**base, status="ringing", occurred_at=placed)
        if fate == "no-answer":
            ends = placed + timedelta(seconds=record["ring_timeout_s"])
            return CallUpdate(**base, status="no-answer" if now >= ends else "ringing", duration_s=0, occurred_at=min(now, ends))
        if fate in ("busy", "failed"):
            ends = placed + timedelta(seconds=2)
            error = "busy" if fate == "busy" else "30003: unreachable destination handset"
            return CallUpdate(**base, status=fate if now >= ends else "queued", duration_s=0, occurred_at=min(now, ends),
                              error=error if now >= ends else None)
        if fate == "voicemail":
            greeting = 8 + int(unit_interval("greeting", context.lead_id) * 12)
            duration = greeting + max(4, int(len(context.voicemail_message.split()) / WORDS_PER_SECOND))
            ends = placed + timedelta(seconds=ring + duration)
            if now < ends:
                return CallUpdate(**base, status="in-progress", answered_by="machine_end_beep", occurred_at=now)
            return CallUpdate(**base, status="completed", answered_by="machine_end_beep", duration_s=duration, occurred_at=ends,
                              voicemail_left=True, turns=(("agent", context.voicemail_message),))
        turns, end = self._conversation(context)
        words = sum(len(text.split()) for _, text in turns)
        listening = 20 + int(unit_interval("talk", context.lead_id, context.attempt) * 150)  # questions, details, pauses
        duration = 3 + int(words / WORDS_PER_SECOND) + 2 * len(turns) + listening
        ends = placed + timedelta(seconds=ring + duration)
        if now < ends:
            return CallUpdate(**base, status="in-progress", answered_by="human", occurred_at=now)
        return CallUpdate(**base, status="completed", answered_by="human", duration_s=duration, occurred_at=ends, turns=tuple(turns),
                          outcome=end.outcome if end else None, summary=end.summary if end else None)

    def _conversation(self, context: CallContext) -> tuple[list[tuple[str, str]], EndCall | None]:
        """The agent against the scripted callee, at most six exchanges."""
        draw = unit_interval("persona", context.campaign_id, context.lead_id, context.attempt)
        lines = next(script for bound, script in PERSONAS if draw < bound)
        turns: list[tuple[str, str]] = []
        end: EndCall | None = None
        for said in [None, *lines, "Okay."][:7]:
            if said is not None:
                turns.append(("callee", said))
            text = ""
            for piece in self.agent.stream(context, turns):
                if isinstance(piece, EndCall):
                    end = piece
                else:
                    text += piece
            if text:
                turns.append(("agent", text))
            if end is not None:
                break
        return turns, end
