"""Campaign lifecycle: the legal status transitions. Each move is audited in `campaign_events` (see `store.campaigns`)."""

from __future__ import annotations

NOT_LAUNCHED = ("draft", "scheduled")  # the statuses a launch starts from
TRANSITIONS: dict[str | None, set[str]] = {
    None: {"draft", "scheduled", "running"},
    "draft": {"scheduled", "running", "stopped"},
    "scheduled": {"draft", "scheduled", "running", "stopped"},
    "running": {"paused", "completed", "stopped"},
    "paused": {"running", "stopped"},
    "completed": set(),
    "stopped": set(),
}


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow; the message says what is allowed."""


def check(campaign_id: str, current: str | None, target: str) -> None:
    """Raise unless `current -> target` is a legal move."""
    allowed = TRANSITIONS.get(current, set())
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none (it is final)"
        raise IllegalTransition(f"campaign {campaign_id!r} is {current or 'not created'}: it cannot become {target} (allowed: {options})")


def is_final(status: str) -> bool:
    """A final status (completed, stopped) allows no further move: nothing more goes out."""
    return status in TRANSITIONS and not TRANSITIONS[status]
