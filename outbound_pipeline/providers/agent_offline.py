"""The offline conversation agent: a deterministic, rule-based caller that pitches the call to action and ends the call
with an outcome as soon as the callee's answer makes it clear. No credentials, no network."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from outbound_pipeline.providers.base import CallContext, EndCall

# The callee's words -> (outcome, the agent's closing line); the first rule that matches wins.
_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"\b(do not call|don'?t call|stop calling|remove (me|my number)|take me off)\b", re.I), "do_not_call",
     "Understood, I'm sorry for the bother. We won't call you again. Goodbye."),
    (re.compile(r"\b(wrong (number|person)|no one (here )?by that name|not me|doesn'?t work here)\b", re.I), "wrong_person",
     "My apologies for the mix-up. Have a good day."),
    (re.compile(r"\b(not interested|no thanks|no,? thank you|we'?re (all )?set)\b", re.I), "not_interested",
     "No problem at all, thanks for your time. Goodbye."),
    (re.compile(r"\b(call (me )?back|busy (right )?now|later|another time|in a meeting)\b", re.I), "call_back_later",
     "Of course, I'll call you back at a better time. Thanks!"),
)
_YES = re.compile(r"\b(yes|yeah|sure|sounds good|interested|tell me more|go ahead|okay|ok|book it|works for me)\b", re.I)


def _tokens(text: str) -> Iterator[str]:
    """Words with their trailing space, as a streaming model sends them."""
    words = text.split(" ")
    for i, word in enumerate(words):
        yield word + (" " if i < len(words) - 1 else "")


class OfflineAgent:
    """Opening line, then the call to action; ends with interested after a yes to the call to action."""

    name = "offline"

    def stream(self, context: CallContext, turns: Sequence[tuple[str, str]]) -> Iterator[str | EndCall]:
        if not turns:
            yield from _tokens(context.opening_line)
            return
        said = next((text for role, text in reversed(turns) if role == "callee"), "")
        for pattern, outcome, closing in _RULES:
            if pattern.search(said):
                yield from _tokens(closing)
                yield EndCall(outcome, f"{outcome.replace('_', ' ')}: {said[:120]}")
                return
        pitched = sum(1 for role, _ in turns if role == "agent") >= 2
        if _YES.search(said) and pitched:
            yield from _tokens("Great, I'll send you an invitation right after this call. Thanks, talk soon!")
            yield EndCall("interested", f"agreed to {context.cta or 'the next step'}")
            return
        if pitched:
            yield from _tokens("I understand. I'll follow up by email with the details. Thanks for your time!")
            yield EndCall("call_back_later", f"undecided: {said[:120]}")
            return
        cta = context.cta or "a short follow-up call"
        yield from _tokens(f"The reason I'm calling: {context.goal.rstrip('.')}. Would you be open to {cta}?")
