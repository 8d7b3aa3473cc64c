"""`follow`: a step taken up poll after poll while the stage before runs, ending once it stopped and a poll found nothing."""

from __future__ import annotations

from outbound_pipeline.engine.following import follow


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_a_follower_takes_what_lands_until_the_stage_before_stops_and_then_one_last_poll():
    clock = Clock()
    stored = {1.0: 3, 2.0: 2, 3.5: 4}  # items the stage before stores at these times; it stops at 3.5 right after storing
    taken: list[tuple[float, int]] = []

    def step() -> int:
        due = sum(n for at, n in stored.items() if at <= clock.t)
        new = due - sum(n for _, n in taken)
        if new:
            taken.append((clock.t, new))
        return new

    total = follow(step, lambda: clock.t < 3.5, every_s=0.5, clock=clock, sleep=clock.sleep)
    assert total == 9  # the 4 stored as the stage before stopped are still taken
    assert [at for at, _ in taken] == [1.0, 2.0, 3.5]
    assert clock.t == 3.5  # ends on the poll that found nothing after the stop, without waiting any longer


def test_a_follower_started_before_the_stage_before_waits_for_it_only_the_start_grace():
    clock = Clock()
    polls: list[float] = []

    def step() -> int:
        polls.append(clock.t)
        return 0

    assert follow(step, lambda: False, every_s=1.0, start_grace_s=5.0, clock=clock, sleep=clock.sleep) == 0
    assert polls[-1] == 5.0 and len(polls) == 6  # polled each second for the grace, then gave up


def test_a_follower_keeps_polling_while_the_stage_before_runs_with_nothing_to_take():
    clock = Clock()
    assert follow(lambda: 0, lambda: clock.t < 30, every_s=0.5, start_grace_s=1.0, clock=clock, sleep=clock.sleep) == 0
    assert clock.t == 30.0  # a slow stage before is not given up on while its run is in progress
