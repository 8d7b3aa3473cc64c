"""Campaign touches and their partition keys: `<campaign>.t<n>` for a step, `<campaign>.reply` for answers.

Answers to replies (`reply_mode: ai`) go through the same draft -> approval -> outbox -> send
stages under the campaign's reply touch, stored as touch number 0 (`REPLY_TOUCH`): never a
step of the campaign, so cadence routing and step metrics skip it.
"""

from __future__ import annotations

import re

REPLY_TOUCH = 0  # the touch number of answers to replies; its partition key ends in `.reply`
_TOUCH_KEY = re.compile(r"^(?P<campaign>[a-z0-9][a-z0-9_-]*)\.(?:t(?P<touch>[1-9]\d*)|(?P<reply>reply))$")


def touch_key(campaign_id: str, touch: int) -> str:
    return f"{campaign_id}.reply" if touch == REPLY_TOUCH else f"{campaign_id}.t{touch}"


def parse_touch_key(key: str) -> tuple[str, int]:
    """'demo_drip.t2' -> ('demo_drip', 2), 'demo_drip.reply' -> ('demo_drip', REPLY_TOUCH); anything else is a clear error."""
    match = _TOUCH_KEY.match(key)
    if not match:
        raise ValueError(f"touch partition key {key!r} is not of the form <campaign>.t<touch> or <campaign>.reply, e.g. demo_drip.t1")
    return match.group("campaign"), REPLY_TOUCH if match.group("reply") else int(match.group("touch"))


def parse_touch(value: str) -> int:
    """A touch as typed on the command line: '2' -> 2, 'reply' -> REPLY_TOUCH."""
    if value.strip().lower() == "reply":
        return REPLY_TOUCH
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"touch {value!r} must be a step number (1, 2, ...) or 'reply' (answers to replies)")
    return int(value)
