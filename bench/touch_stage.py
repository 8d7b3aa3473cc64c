"""One stage of a streamed touch, as its own process: `python -m bench.touch_stage STAGE SLICE FOLDER`.

`bench.touch --streamed` starts three of these at once, as Dagster's run launcher would start three runs, each
with its own process and the shared instance (`DAGSTER_HOME`) and DuckDB file. `research` researches every
recipient in one run that stores snippets as they come (`SLICE` 0), or `SLICE` recipients a run (`research_snippets`'
`max_leads`); `compose` is one run following research (`follow_research`: it drafts each lead as its research lands,
until research is done); `send` approves, queues and sends whatever is drafted, run after run, until compose is done.
Each writes `FOLDER/STAGE.done` when it ends, holding when each of its runs ended and what it did.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg

from outbound_pipeline.runner import Driver

CAMPAIGN, TOUCH_KEY = "bench_touch", "bench_touch.t1"
IDLE_SECONDS = 0.3  # between runs that found nothing to do
FOLLOW = {"ops": {"drafts": {"config": {"follow_research": True}}}}  # one compose run, drafting as research lands


def _metadata(result: dg.ExecuteInProcessResult, node: str, key: str) -> int:
    return int(result.asset_materializations_for_node(node)[0].metadata[key].value)  # type: ignore[arg-type]


def main() -> None:
    stage, size, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    now = datetime.fromisoformat(os.environ["OUTBOUND_BENCH_NOW"])
    started = float(os.environ["OUTBOUND_BENCH_STARTED"])
    driver = Driver(dg.DagsterInstance.get(), os.environ["OUTBOUND_DUCKDB_PATH"])
    log: list[tuple[float, int]] = []
    while True:
        upstream_done = (folder / "compose.done").exists()  # checked before the run: a send run after compose ended sends the rest
        if stage == "research":
            result = driver.run(["research_snippets"], now, CAMPAIGN,
                                run_config={"ops": {"research_snippets": {"config": {"max_leads": size}}}})
            done = _metadata(result, "research_snippets", "leads_researched")
        elif stage == "compose":
            done = _metadata(driver.run(["drafts", "recipient_steps"], now, TOUCH_KEY, run_config=FOLLOW), "drafts", "drafted")
        else:
            done = _metadata(driver.run(["approvals", "outbox", "sends"], now, TOUCH_KEY), "sends", "sent")
        log.append((round(time.time() - started, 2), done))
        if stage == "compose" or (stage == "research" and (size == 0 or done < size)) or (stage == "send" and upstream_done):
            break
        if not done:
            time.sleep(IDLE_SECONDS)
    (folder / f"{stage}.done").write_text(json.dumps(log), encoding="utf-8")


if __name__ == "__main__":
    main()
