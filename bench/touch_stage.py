"""One stage of a streamed touch, as its own process: `python -m bench.touch_stage STAGE SLICE FOLDER`.

`bench.touch --streamed` starts these as Dagster's run launcher would start the runs, each with its own process and
the shared instance (`DAGSTER_HOME`) and DuckDB file. `research` is the launch (`launch_job`'s selection: the
audience, then research storing snippets as they come), researching every recipient (`SLICE` 0) or `SLICE` of them,
then further runs of `SLICE` (`research_snippets`' `max_leads`) until none is left; `compose` is one run following
research (`follow_research`: it waits for the audience, then drafts each lead as its research lands, until research
is done), started with the launch; `review` one run following compose (`follow_compose`: the campaign's auto mode approves each draft as it is
stored); `send` one run following review (`follow_review`: it queues and sends each draft as it is approved). These
three are the runs a launch's sensors start for its first touch. Each writes `FOLDER/STAGE.done` when it ends: when
its process was ready to start its first run, when each run ended and what it did, the CPU it used, and how often it
opened the DuckDB file, how long it waited for it and held it.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dagster as dg

from outbound_pipeline.defs.s3_compose.jobs import FOLLOW_RESEARCH
from outbound_pipeline.defs.s4_review.jobs import FOLLOW_COMPOSE
from outbound_pipeline.defs.s5_send.jobs import FOLLOW_REVIEW
from outbound_pipeline.runner import LAUNCH, Driver
from outbound_pipeline.store import warehouse

CAMPAIGN, TOUCH_KEY = "bench_touch", "bench_touch.t1"


class LockTimes:
    """How often this process opened the DuckDB file, how long it waited for it (its turn, then the file) and held it."""

    def __init__(self) -> None:
        self.opens, self.waited, self.held = 0, 0.0, 0.0
        self._connect = warehouse.connect
        warehouse.connect = self.timed_connect

    @contextmanager
    def timed_connect(self, *args, **kwargs):
        start = time.perf_counter()
        with self._connect(*args, **kwargs) as con:
            opened = time.perf_counter()
            yield con
        self.opens, self.waited, self.held = self.opens + 1, self.waited + opened - start, self.held + time.perf_counter() - opened

    def summary(self) -> dict[str, float]:
        return {"opens": self.opens, "lock_waited_s": round(self.waited, 1), "lock_held_s": round(self.held, 1)}


def _metadata(result: dg.ExecuteInProcessResult, node: str, key: str) -> int:
    return int(result.asset_materializations_for_node(node)[0].metadata[key].value)  # type: ignore[arg-type]


def main() -> None:
    stage, size, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    now = datetime.fromisoformat(os.environ["OUTBOUND_BENCH_NOW"])
    started = float(os.environ["OUTBOUND_BENCH_STARTED"])
    locks = LockTimes()
    driver = Driver(dg.DagsterInstance.get(), os.environ["OUTBOUND_DUCKDB_PATH"])
    log: list[tuple[float, int]] = []
    ready = round(time.time() - started, 2)  # imports done, the first run about to start
    while True:
        if stage == "research":  # the launch (audience, then research), then research alone, slice after slice
            result = driver.run(["research_snippets"] if log else LAUNCH, now, CAMPAIGN,
                                run_config={"ops": {"research_snippets": {"config": {"max_leads": size}}}})
            done = _metadata(result, "research_snippets", "leads_researched")
        elif stage == "compose":
            # Requested once the launch's run exists in the instance (its process starts with this one): wait for its
            # record, which the pipeline's launch creates before either process starts.
            while not driver.instance.get_runs(limit=1):
                time.sleep(0.01)
            done = _metadata(driver.run(["drafts", "recipient_steps"], now, TOUCH_KEY, run_config=FOLLOW_RESEARCH), "drafts", "drafted")
        elif stage == "review":
            done = _metadata(driver.run(["approvals"], now, TOUCH_KEY, run_config=FOLLOW_COMPOSE), "approvals", "decisions_recorded")
        else:
            done = _metadata(driver.run(["sends"], now, TOUCH_KEY, run_config=FOLLOW_REVIEW), "sends", "sent")
        log.append((round(time.time() - started, 2), done))
        if stage != "research" or size == 0 or done < size:
            break
    usage = resource.getrusage(resource.RUSAGE_SELF)
    (folder / f"{stage}.done").write_text(json.dumps({"ready_at": ready, "runs": log, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), **locks.summary()}), encoding="utf-8")


if __name__ == "__main__":
    main()
