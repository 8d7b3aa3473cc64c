"""Offline composer: deterministic, rule-based drafts that still cite a real snippet and follow the voice."""

from __future__ import annotations

from outbound_pipeline.domain.voice import parse_voice
from outbound_pipeline.ids import unit_interval
from outbound_pipeline.providers.base import ComposedAnswer, ComposedDraft, ComposeRequest, ReplyToAnswer

LIMITS = {"email": 2000, "whatsapp": 1000, "sms": 320}

_OPENERS = {
    "introduce": ["I read that {signal}.", "Saw the news that {signal}.", "Noticed that {signal}."],
    "follow_up_on_signal": ["Following up: {signal}.", "One more thing caught my eye: {signal}.", "Quick follow-up, since {signal}."],
    "last_touch": ["Last note from me, promise.", "Closing the loop on my earlier notes.", "I'll keep this one short."],
}
_TONES = {"introduce": "warm", "follow_up_on_signal": "helpful", "last_touch": "direct"}
# Holding answers to a reply, by its intent: a person follows up with the substance.
_HOLDING = {
    "interested": "Thanks {first}, great to hear. Would Tuesday or Wednesday next week work for a 20-minute call? Happy to fit your calendar.",
    "question": "Thanks for asking, {first}. Good question: let me get you a precise answer today.",
    "not_now": "Understood, {first}, thanks for letting me know. I'll check back in a few months.",
    "not_interested": "Thanks for the honest answer, {first}. I won't follow up on this again.",
}
_HOLDING_OTHERWISE = "Thanks for your reply, {first}. I'll get back to you shortly."


def choose_channel(preferred: tuple[str, ...], available: tuple[str, ...]) -> str:
    """The first preferred channel the lead can be reached on, else the first reachable one."""
    for channel in preferred:
        if channel in available:
            return channel
    if not available:
        raise ValueError("the lead has no reachable channel")
    return available[0]


# Words that start a sentence without being a name: only these lose their capital inside "I read that ...".
_SENTENCE_STARTERS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "their", "there", "they", "we", "our",
    "in", "on", "at", "after", "before", "with", "for", "new", "last", "over", "according", "since", "during",
})


def as_clause(text: str) -> str:
    """A snippet sentence placed after "I read that": its first word is lower-cased only when it is a common word,
    so a company or person's name keeps its capital ("Harbor Freight", "DHL", "iPhone" stay as written)."""
    first = text.split(" ", 1)[0]
    if first.lower() in _SENTENCE_STARTERS and first[:1].isupper() and first[1:].islower():
        return text[:1].lower() + text[1:]
    return text


class RuleComposer:
    """Picks a snippet per touch, opens with it, states the value from `voice.md`, asks for the CTA."""

    name = "rules"

    def compose(self, request: ComposeRequest) -> ComposedDraft:
        if not request.snippets:
            raise ValueError(f"lead {request.lead.lead_id} has no research snippets to ground a draft in")
        voice = parse_voice(request.voice)
        channel = choose_channel(request.step.channels, request.available_channels)
        snippet = request.snippets[(request.step.touch - 1) % len(request.snippets)]
        intent = request.step.intent if request.step.intent in _OPENERS else "introduce"
        pick = int(unit_interval("opener", request.lead.lead_id, request.step.touch) * 3)
        signal = as_clause(snippet.text.rstrip("."))
        opener = _OPENERS[intent][pick].format(signal=signal)
        cta = request.step.cta or "a 20-minute call"
        value = voice.fact("value", "We help teams like yours.")
        sender = voice.fact("sender", "the team")
        company = voice.fact("company")
        first = request.lead.first_name
        tone = request.step.tone or _TONES.get(intent, "warm")
        if channel == "email":
            proof = voice.fact("proof")
            body = (
                f"Hi {first},\n\n{opener} (source: {snippet.source_url})\n\n{value}"
                + (f" {proof}" if proof and intent != "last_touch" else "")
                + f"\n\nWould {cta} be useful for {request.lead.company or 'your team'}?\n\n{voice.fact('signoff', 'Best')}"
                + (f"\n{sender}, {company}" if company else "")
            )
            subject = {"introduce": f"{request.lead.company or first}: on-time deliveries",
                       "follow_up_on_signal": f"Re: {snippet.title}"[:80],
                       "last_touch": "Should I close this out?"}[intent]
        else:
            body = f"Hi {first}, {sender}{' from ' + company if company else ''} here. {opener} {value} Open to {cta}?"
            if channel == "sms":
                body += " Reply STOP to opt out."
            subject = None
        if len(body) > LIMITS[channel]:
            body = body[: LIMITS[channel] - 1] + "…"
        return ComposedDraft(channel=channel, tone=tone, cta=cta, subject=subject, body=body,
                             cited_snippet_ids=[snippet.snippet_id], composer=self.name)

    def answer(self, reply: ReplyToAnswer) -> ComposedAnswer:
        """A short holding answer that fits the reply's intent."""
        return ComposedAnswer(body=_HOLDING.get(reply.intent, _HOLDING_OTHERWISE).format(first=reply.first_name), composer=self.name)
