"""The due leads of a touch whose research is stored, taken up poll by poll, so compose can run beside research.

Research stores its snippets every fraction of a second as they come. A compose run that follows research
asks, at each poll, which of its due leads have snippets now; it is done with research once no recipient of
the campaign is left to research, or once research has stopped (no research run in progress) and stored
nothing for `grace_s`: a research run that failed or was cancelled does not keep compose waiting for ever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import duckdb
import pandas as pd

from outbound_pipeline.store import research as research_store

FOLLOW_GRACE_S = 10.0  # how long a stopped research may stay quiet before compose stops waiting for it


class ResearchFeed:
    """`ready()`: the rows of `due` researched since the last call, with their snippets; `done()`: research is over.

    Without `follow`, the first `ready()` returns every due lead researched so far and `done()` is true at once."""

    def __init__(self, due: pd.DataFrame, campaign_id: str, connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
                 follow: bool, research_in_progress: Callable[[], bool], grace_s: float = FOLLOW_GRACE_S,
                 clock: Callable[[], float] = time.monotonic, changed: Callable[[], bool] = lambda: True):
        self.due, self.campaign_id, self.follow = due, campaign_id, follow
        self._connect, self._research_in_progress, self._grace_s, self._clock = connect, research_in_progress, grace_s, clock
        self._changed = changed  # whether research stored anything since the last look (`store.changes.Watch`)
        self.waiting = set(due["lead_id"])  # due leads not handed out yet
        self._polls = 0
        self._left: int | None = None  # recipients of the campaign without research at the last poll
        self._changed_at = clock()

    def ready(self) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """At most one (due rows, their snippets) pair: the leads whose research landed since the last call."""
        if not self.waiting or (self._polls and not self.follow) or (self._polls and not self._changed()):
            return
        self._polls += 1
        with self._connect() as con:
            snippets = research_store.snippets_of_leads(con, self.campaign_id, sorted(self.waiting))
            left = research_store.count_without_research(con, self.campaign_id) if self.follow else 0
        if left != self._left or not snippets.empty:
            self._left, self._changed_at = left, self._clock()
        if snippets.empty:
            return
        leads = self.due[self.due["lead_id"].isin(set(snippets["lead_id"]))]
        self.waiting.difference_update(leads["lead_id"])
        yield leads, snippets

    def done(self) -> bool:
        """True once no more research will land for the due leads (always, when not following)."""
        if not self.follow or not self.waiting or self._left == 0:
            return True
        quiet = self._clock() - self._changed_at >= self._grace_s
        return quiet and not self._research_in_progress()
