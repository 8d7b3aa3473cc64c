"""Contact preferences: what an opt-out covers, one channel or every channel.

An organisation chooses the scope (`OUTBOUND_OPT_OUT_SCOPE`): `all` (the default) makes any opt-out stop every
channel; `channel` makes STOP on SMS stop SMS, STOP on WhatsApp stop WhatsApp and an email unsubscribe (link or
reply) stop email, while the other channels go on. Whatever the scope, a reply asking to stop everything
("STOP ALL", "unsubscribe from everything") and a spam complaint stop every channel, and a hard bounce or an
invalid number ends the lead as before.
"""

from __future__ import annotations

import re

SCOPES = ("all", "channel")
ALL = "all"
CHANNEL_OPT_OUTS = ("opt_out", "unsubscribe_link")  # the suppression reasons a channel scope can narrow
_CHANNELS = ("email", "whatsapp", "sms", "voice")
_EVERYTHING = re.compile(
    r"^\W*(stop\s*all|stopall|unsubscribe\s*all|opt\s*-?\s*out\s*all)\W*$"
    r"|\b(from|of|on|to)\s+(everything|all\s+(your\s+)?(channels|lists|messages|emails\s+and\s+texts))\b"
    r"|\b(everything|all\s+channels|every\s+channel)\b",
    re.I,
)


def parse_scope(raw: str | None) -> str:
    """The opt-out scope from its setting text; an unknown value is an error naming the choices."""
    scope = (raw or ALL).strip().lower()
    if scope not in SCOPES:
        raise ValueError(f"OUTBOUND_OPT_OUT_SCOPE={raw!r} must be one of: {', '.join(SCOPES)}")
    return scope


def asks_for_everything(text: str | None) -> bool:
    """True when an opt-out reply asks to stop every channel ("STOP ALL", "unsubscribe me from everything")."""
    return bool(text) and bool(_EVERYTHING.search(str(text)))


def opt_out_channel(reason: str, channel: object, body: object, scope: str) -> str:
    """The channel a suppression of `reason` covers (`all` or the channel it came on).

    Only opt-outs narrow to a channel, and only under the `channel` scope, when the channel is known and the
    lead did not ask to stop everything; complaints, hard bounces and invalid numbers always cover `all`.
    """
    if reason not in CHANNEL_OPT_OUTS or scope != "channel" or channel not in _CHANNELS:
        return ALL
    if isinstance(body, str) and asks_for_everything(body):
        return ALL
    return str(channel)
