"""Stage 4, review: nothing is sent without an approval row.

A reviewer decides by materialising `approvals` for a touch from the launchpad with a
short config (or with `outbound review`). In `auto` mode the asset approves by itself
and records that it did.
"""


import json

import dagster as dg
import pandas as pd
from pydantic import Field

from outbound_pipeline.defs.review.decisions import ReviewRequest, decide
from outbound_pipeline.markdown import md_table
from outbound_pipeline.partitions import parse_touch_key, touch_partitions
from outbound_pipeline.resources import PipelineClock, Warehouse
from outbound_pipeline.store.reads import campaign_spec
from outbound_pipeline.store.warehouse import insert_new

GROUP = "s4_review"


class ReviewConfig(dg.Config):
    """Decisions for this touch. Leave everything empty to only refresh the review queue."""

    reviewer: str = Field(default="", description="Who decides; defaults to the run's `reviewer` or `dagster/user` tag.")
    approve: list[str] = Field(default=[], description="Draft ids to approve as written.")
    reject: list[str] = Field(default=[], description="Draft ids that must never be sent.")
    edits: dict[str, str] = Field(default={}, description="Draft id -> replacement text (the original is kept).")
    approve_all_remaining: bool = Field(default=False, description="Approve every draft still undecided (batch mode: after the spot check).")
    note: str = Field(default="", description="Why, kept on every approval row of this run.")


def review_queue_markdown(drafts: pd.DataFrame, snippets: pd.DataFrame, limit: int = 25) -> str:
    """Drafts waiting for a decision, with the cited research, as readable Markdown."""
    if drafts.empty:
        return "_Nothing is waiting for review._"
    by_id = snippets.set_index("snippet_id") if not snippets.empty else pd.DataFrame()
    blocks = []
    for row in drafts.head(limit).itertuples(index=False):
        cites = []
        for sid in json.loads(row.cited_snippet_ids):
            if sid in by_id.index:
                s = by_id.loc[sid]
                cites.append(f"  - [{s['title']}]({s['source_url']}): {s['text']}")
        flags = json.loads(row.flags)
        blocks.append(
            f"#### `{row.draft_id}` · {row.first_name} {row.last_name or ''} ({row.company or 'no company'}) · {row.channel}\n"
            + (f"**Subject:** {row.subject}\n\n" if row.subject else "")
            + "\n".join(f"> {line}" if line else ">" for line in row.body.splitlines())
            + ("\n\n**Flags:** " + ", ".join(flags) if flags else "")
            + "\n\n**Grounded in:**\n" + ("\n".join(cites) or "  - (no snippet found)")
        )
    more = f"\n\n_{len(drafts) - limit} more waiting; `outbound review list` shows them all._" if len(drafts) > limit else ""
    return "\n\n---\n\n".join(blocks) + more


@dg.asset(partitions_def=touch_partitions, group_name=GROUP, pool="duckdb", deps=["drafts"], kinds={"duckdb"})
def approvals(context: dg.AssetExecutionContext, config: ReviewConfig, warehouse: Warehouse, clock: PipelineClock) -> dg.MaterializeResult:
    """Record review decisions for the touch and show what is still waiting."""
    campaign_id, touch = parse_touch_key(context.partition_key)
    tags = context.run.tags if context.run else {}
    reviewer = config.reviewer or tags.get("reviewer") or tags.get("dagster/user") or ""
    request = ReviewRequest(reviewer=reviewer, approve=list(config.approve), reject=list(config.reject), edits=dict(config.edits),
                            approve_all_remaining=config.approve_all_remaining, note=config.note or None)
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        drafts = con.execute("SELECT * FROM drafts WHERE campaign_id = ? AND touch = ? ORDER BY draft_id", [campaign_id, touch]).df()
        decided = con.execute("SELECT draft_id, decision FROM approvals WHERE campaign_id = ? AND touch = ?", [campaign_id, touch]).df()
        rows = decide(drafts, decided, spec.approval, request, clock.now(), spec.batch_spot_check)
        recorded = insert_new(con, "approvals", rows)
        counts = con.execute("""
            SELECT count(*) AS drafts,
                   count(a.draft_id) FILTER (WHERE a.decision = 'approved') AS approved,
                   count(a.draft_id) FILTER (WHERE a.decision = 'edited') AS edited,
                   count(a.draft_id) FILTER (WHERE a.decision = 'rejected') AS rejected,
                   count(*) FILTER (WHERE a.draft_id IS NULL) AS waiting
            FROM drafts d LEFT JOIN approvals a USING (draft_id) WHERE d.campaign_id = ? AND d.touch = ?
        """, [campaign_id, touch]).df().iloc[0].to_dict()
        waiting = con.execute("""
            SELECT d.*, l.first_name, l.last_name, l.company FROM drafts d JOIN leads l USING (lead_id)
            WHERE d.campaign_id = ? AND d.touch = ? AND d.draft_id NOT IN (SELECT draft_id FROM approvals)
            ORDER BY d.draft_id
        """, [campaign_id, touch]).df()
        snippets = con.execute("SELECT * FROM research_snippets WHERE campaign_id = ?", [campaign_id]).df()
    context.log.info(f"{recorded} decisions recorded for {context.partition_key} by {request.reviewer or spec.approval}")
    return dg.MaterializeResult(metadata={
        "approval_mode": spec.approval, "decisions_recorded": recorded, **{k: int(v) for k, v in counts.items()},
        "review_queue": dg.MetadataValue.md(review_queue_markdown(waiting, snippets)),
        "decisions_this_run": dg.MetadataValue.md(md_table(rows[["draft_id", "decision", "reviewer"]], 50) if not rows.empty else "_none_"),
    })
