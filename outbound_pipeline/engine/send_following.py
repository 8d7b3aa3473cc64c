"""Sending beside review: a touch's drafts queued and sent as they are approved, until review is done.

Each poll queues what was approved since the last one (`outbox.queue_touch`) and dispatches the outbox exactly as
a one-off send does (`dispatch.dispatch`), under one pacer for the whole run, so the channels' rates hold across polls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import duckdb

from outbound_pipeline.domain.limits import OrgLimits, channel_rates
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.engine.dispatch import DispatchStats, channel_pacer, dispatch
from outbound_pipeline.engine.following import follow
from outbound_pipeline.engine.outbox import queue_touch
from outbound_pipeline.providers.base import ChannelProvider


def add_up(total: DispatchStats, poll: DispatchStats) -> None:
    """Counts add up over the polls; what describes the outbox now (deferred, held, uncertain, pacing) is the last poll's."""
    total.reconciled += poll.reconciled
    total.sent += poll.sent
    total.failed += poll.failed
    total.suppressed += poll.suppressed
    total.cost_usd += poll.cost_usd
    for channel, count in poll.by_channel.items():
        total.by_channel[channel] = total.by_channel.get(channel, 0) + count
    total.deferred, total.held_by_limit, total.uncertain = poll.deferred, poll.held_by_limit, poll.uncertain
    total.paced_seconds = poll.paced_seconds or total.paced_seconds


def send_following(con_factory: Callable, provider_for: Callable[[str], ChannelProvider], provider_named: Callable[[str], ChannelProvider],
                   spec: CampaignSpec, touch: int, now: Callable[[], datetime], max_concurrency: int, upstream_running: Callable[[], bool],
                   limits: OrgLimits | None = None, approvals_changed: Callable[[], bool] = lambda: True) -> tuple[int, DispatchStats]:
    """Queue and send the touch's approved drafts poll after poll while review runs; returns (rows queued, what dispatch did).

    `approvals_changed()` (a `store.changes.Watch`) spares the file an open when nothing was decided since the last poll
    and the last dispatch left nothing it could send."""
    limits = limits or OrgLimits.from_env()
    pacer = channel_pacer(spec, limits, provider_for, channel_rates(spec, limits))
    total = DispatchStats()
    queued = 0
    idle = False  # the last dispatch could send nothing (what is left waits for windows or limits)

    def queue_and_send() -> int:
        nonlocal queued, idle
        if not approvals_changed() and idle:
            return 0  # nothing decided since a dispatch that found nothing it could send: the file is not opened
        moment = now()
        outbox: dict[str, int] = {}

        def queue(con: duckdb.DuckDBPyConnection) -> None:  # in dispatch's deciding unit of work
            outbox["added"], _ = queue_touch(con, spec.name, touch, moment)

        poll = dispatch(con_factory, provider_for, provider_named, spec, touch, moment, max_concurrency, limits=limits, pacer=pacer,
                        prepare=queue)
        queued += outbox["added"]
        add_up(total, poll)
        taken = poll.sent + poll.failed + poll.suppressed + poll.reconciled
        idle = not taken
        return outbox["added"] + taken

    follow(queue_and_send, upstream_running)
    return queued, total
