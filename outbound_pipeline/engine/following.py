"""A step that follows the stage before it while that stage runs, taking up what it stores as it stores it.

Review follows compose and sending follows review the way compose follows research (`research_feed.py`): one
run keeps taking what the stage before has stored so far, poll after poll, and ends once that stage has stopped
and a last poll found nothing new, so what it stored just before ending is still taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable

HAND_OVER_EVERY_S = 0.25  # a stage stores what it has done at most this often while it goes on
FOLLOW_EVERY_S = 0.1  # between polls that found nothing new: cheap, as a poll opens the file only when a stamp moved
UPSTREAM_EVERY_S = 0.25  # between looks at the Dagster instance for whether the stage before still runs
START_GRACE_S = 15.0  # how long a follower waits for the stage before to show up (sensors requesting both may tick apart)


def follow(step: Callable[[], int], upstream_running: Callable[[], bool], every_s: float = FOLLOW_EVERY_S,
           start_grace_s: float | None = None, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep, upstream_every_s: float = UPSTREAM_EVERY_S) -> int:
    """Call `step()` (returns how many items it took up) poll after poll until the stage before is done; returns the total.

    The stage before is done once `upstream_running()` was false before a call that found nothing; it is asked at most
    every `upstream_every_s`. A follower started at the same time as the stage before (both requested by one sensor
    tick) waits `start_grace_s` for it to appear."""
    grace = START_GRACE_S if start_grace_s is None else start_grace_s
    started = clock()
    seen = False
    total = 0
    running, asked_at = True, float("-inf")
    while True:
        polled_at = clock()
        if polled_at - asked_at >= upstream_every_s or not running:
            running, asked_at = upstream_running(), polled_at
        seen = seen or running
        taken = step()
        total += taken
        if not running and not taken and (seen or clock() - started >= grace):
            return total
        if not taken:
            sleep(max(0.0, every_s - (clock() - polled_at)))


def wait_while(running: Callable[[], bool], every_s: float = UPSTREAM_EVERY_S, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once `running()` is false: a stage started with the run it depends on waits for what that run does first."""
    while running():
        sleep(every_s)
