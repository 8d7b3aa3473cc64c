"""Stage 4, review: nothing is sent without an approval row.

A reviewer decides by materialising `approvals` for a touch from the launchpad with a
short config (or with `outbound review`). In `auto` mode the asset approves by itself
and records that it did. The queue shown also quotes the reply an answer draft answers;
`replies` is written downstream of `approvals`, so it cannot be a declared dep (no cycles).
"""


import os
from urllib.parse import urlencode

import dagster as dg
import pandas as pd
from pydantic import Field

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.defs.resources import PipelineClock, Warehouse
from outbound_pipeline.defs.runs import materialising_now
from outbound_pipeline.domain.review import ReviewError, ReviewRequest
from outbound_pipeline.domain.touches import parse_touch_key
from outbound_pipeline.engine.following import follow
from outbound_pipeline.engine.review_queue import decisions_markdown, load_review, record_decisions, review_queue_markdown

GROUP = "s4_review"
WAITING_CHECK = "no_draft_waits_for_review"
DRAFTS_KEY = dg.AssetKey("drafts")


def inbox_url(campaign_id: str, touch: int) -> str:
    """The review inbox filtered to this touch, on the server `outbound serve` runs (OUTBOUND_PUBLIC_BASE_URL, else local)."""
    base = (os.environ.get("OUTBOUND_PUBLIC_BASE_URL") or "http://127.0.0.1:8787").rstrip("/")
    return f"{base}/inbox?{urlencode({'campaign': campaign_id, 'touch': touch})}"


def waiting_text(waiting: int, held: int, mode: str, url: str) -> str:
    """How many drafts wait for a person, in a sentence (auto mode waits only for drafts it held)."""
    count = held if mode == "auto" else waiting
    if count == 0:
        return "nothing waits for a person"
    what = "draft waits" if count == 1 else "drafts wait"
    return f"{count} {what} for a person in the review inbox: {url}"


class ReviewConfig(dg.Config):
    """Decisions for this touch. Leave everything empty to only refresh the review queue."""

    reviewer: str = Field(default="", description="Who decides; defaults to the run's `reviewer` or `dagster/user` tag.")
    approve: list[str] = Field(default=[], description="Draft ids to approve as written.")
    reject: list[str] = Field(default=[], description="Draft ids that must never be sent.")
    edits: dict[str, str] = Field(default={}, description="Draft id -> replacement text (the original is kept).")
    approve_all_remaining: bool = Field(default=False, description="Approve every draft still undecided (batch mode: after the spot check).")
    note: str = Field(default="", description="Why, kept on every approval row of this run.")
    follow_compose: bool = Field(default=False, description="Then keep deciding, under the campaign's approval mode, the drafts "
                                 "compose stores while this run goes on, until compose is done (`auto` mode: the touch is "
                                 "approved as it is drafted; launch this run with the compose run).")


# In its own pool, not `duckdb`: a following run holds it while compose goes on, opening the file only for each
# short decision; one review step at a time, and each decision's read and insert share one write lock.
@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="review", kinds={"duckdb"},
          check_specs=[dg.AssetCheckSpec(WAITING_CHECK, asset="approvals",
                                         description="Warns while drafts of the touch wait for a person, so a materialisation "
                                                     "with work left for a reviewer does not read as done.")],
          deps=["drafts", *(dg.AssetDep(k, partition_mapping=dg.AllPartitionMapping()) for k in ("campaigns", "leads", "research_snippets"))])
def approvals(context: dg.AssetExecutionContext, config: ReviewConfig, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Record review decisions for the touch and show what is still waiting (metadata `review_queue`)."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    tags = context.run.tags if context.run else {}
    reviewer = config.reviewer or tags.get("reviewer") or tags.get("dagster/user") or ""
    request = ReviewRequest(reviewer=reviewer, approve=list(config.approve), reject=list(config.reject), edits=dict(config.edits),
                            approve_all_remaining=config.approve_all_remaining, note=config.note or None)
    with warehouse.connect() as con:
        try:
            rows = record_decisions(con, campaign_id, touch, request, clock.now())
        except ReviewError as exc:
            raise dg.Failure(description=f"review of {context.partition_key} refused, nothing recorded: {exc}",
                             allow_retries=False) from exc
    if config.follow_compose:
        taken = [part for part in (rows, *_follow_compose(context, warehouse, clock, campaign_id, touch, reviewer)) if not part.empty]
        rows = pd.concat(taken, ignore_index=True) if taken else rows
    with warehouse.connect() as con:
        review = load_review(con, campaign_id, touch)
    who = rows["reviewer"].iloc[0] if not rows.empty else "nobody"
    context.log.info(f"{len(rows)} decisions recorded for {context.partition_key} by {who}")
    url = inbox_url(campaign_id, touch)
    waiting = waiting_text(review.counts["waiting"], review.held, review.mode, url)
    context.log.info(f"{context.partition_key}: {waiting}")
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(
        check_name=WAITING_CHECK, passed=waiting == "nothing waits for a person", severity=dg.AssetCheckSeverity.WARN,
        description=waiting, metadata={"inbox": dg.MetadataValue.url(url)})], metadata={
        "waiting_for_review": dg.MetadataValue.text(waiting), "inbox": dg.MetadataValue.url(url),
        "approval_mode": review.mode, "decisions_recorded": len(rows), **review.counts,
        "review_queue": dg.MetadataValue.md(review_queue_markdown(review)),
        "decisions_this_run": dg.MetadataValue.md(decisions_markdown(rows)),
    })


def _follow_compose(context: dg.AssetExecutionContext, warehouse: Warehouse, clock: PipelineClock, campaign_id: str, touch: int,
                    reviewer: str) -> list[pd.DataFrame]:
    """The decisions the approval mode takes by itself on each draft compose stores, until compose is done."""
    parts: list[pd.DataFrame] = []
    drafts = warehouse.watch("drafts")

    def decide_new() -> int:
        if not drafts.changed():  # nothing drafted since the last look: the file is not opened
            return 0
        with warehouse.connect() as con:
            rows = record_decisions(con, campaign_id, touch, ReviewRequest(reviewer=reviewer), clock.now())
        parts.append(rows)
        return len(rows)

    follow(decide_new, lambda: materialising_now(context.instance, DRAFTS_KEY, context.partition_key))
    return parts
