"""Reply intents and the opt-out rule every classifier obeys.

A STOP-style keyword or a "remove me" request is an opt-out whatever else the reply
says, so the rule runs before (and overrides) any classifier, a model included.
"""

from __future__ import annotations

import re

INTENTS = ("interested", "question", "not_now", "not_interested", "opt_out", "out_of_office", "auto_reply", "unknown")

# Carrier keywords (STOP, UNSUBSCRIBE, CANCEL, END, QUIT, STOPALL, ...) and their plain-language cousins.
_OPT_OUT_WORDS = re.compile(r"^\W*(stop\s*all|stopall|stop|unsubscribe|cancel|end|quit|revoke|optout|opt\s*out|arret|baja)\W*$", re.I)
_OPT_OUT_PHRASES = re.compile(
    r"\b(remove me|take me off|unsubscribe|opt(?:-| )?out|stop (?:messaging|texting|emailing|contacting) me|do not (?:contact|message|email) me|"
    r"don'?t (?:contact|message|email|text) me|no more (?:messages|emails))\b",
    re.I,
)
# Checked in order: the first match names the intent.
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("out_of_office", re.compile(r"\b(out of (?:the )?office|on leave|on holiday|on vacation|limited access to email|ooo)\b", re.I)),
    ("auto_reply", re.compile(r"\b(auto(?:matic)?[- ]?reply|this is an automated|do not reply to this)\b", re.I)),
    ("not_interested", re.compile(r"\b(not interested|no thanks|no, thanks|not for us|we built our own|not looking)\b", re.I)),
    ("not_now", re.compile(r"\b(not (?:right )?now|next quarter|maybe later|ping me in|busy|after (?:the )?holidays|in a few months)\b", re.I)),
    ("interested", re.compile(r"\b(yes|sounds (?:good|interesting)|happy to|let'?s (?:do|talk|chat)|book|works for me|send (?:me )?a time|calendar|schedule)\b", re.I)),
]
OPT_OUT = "opt_out"
NOT_A_PERSON = ("auto_reply", "out_of_office")  # automatic answers: nobody to answer back
NEEDS_NO_ANSWER = (OPT_OUT, *NOT_A_PERSON)  # replies that open no ticket and get no answer draft


def is_opt_out(text: str) -> bool:
    """True for STOP-style keywords in any case or punctuation, and 'remove me'-style requests."""
    return bool(_OPT_OUT_WORDS.match(text.strip()) or _OPT_OUT_PHRASES.search(text))


def classify_intent(text: str) -> str:
    """First matching rule wins; opt-outs first, questions only when nothing stronger matched."""
    if is_opt_out(text):
        return "opt_out"
    for intent, pattern in _RULES:
        if pattern.search(text):
            return intent
    if "?" in text:
        return "question"
    return "unknown"
