"""The review queue of one touch: reading it, recording decisions on it, and showing it.

Shared by the `approvals` asset (launchpad) and `outbound review` (terminal), so both
read the same rows, apply the same `decide()` rules and write the same approvals rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from outbound_pipeline.domain.review import ReviewError, ReviewRequest, decide
from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.markdown import md_table
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.warehouse import insert_new


@dataclass
class TouchReview:
    """What a reviewer of one touch needs: counts, the waiting drafts with their leads, and the research."""

    campaign_id: str
    touch: int
    mode: str
    counts: dict[str, int]
    waiting: pd.DataFrame
    snippets: pd.DataFrame


def record_decisions(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int, request: ReviewRequest, now: datetime) -> pd.DataFrame:
    """Apply `request` to the touch under the campaign's approval mode and insert the approval rows; returns them.

    The read and the insert share one connection, which holds DuckDB's single write lock,
    so no other writer can decide the same draft in between.
    """
    spec = campaign_spec(con, campaign_id)
    drafts = con.execute("SELECT * FROM drafts WHERE campaign_id = ? AND touch = ? ORDER BY draft_id", [campaign_id, touch]).df()
    decided = con.execute("SELECT draft_id, decision, reviewer, decided_at FROM approvals WHERE campaign_id = ? AND touch = ?",
                          [campaign_id, touch]).df()
    asks = request.approve or request.reject or request.edits or request.approve_all_remaining
    if drafts.empty and asks:
        raise ReviewError(f"{campaign_id} touch {touch} has no drafts to decide on")
    rows = decide(drafts, decided, spec.approval, request, now, spec.batch_spot_check)
    recorded = insert_new(con, "approvals", rows)
    if recorded != len(rows):
        raise ReviewError(f"{len(rows) - recorded} of these drafts were decided by someone else meanwhile; nothing else changed, list the queue again")
    return rows


def load_review(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> TouchReview:
    """Counts and waiting drafts of a touch, read in one short connection."""
    spec = campaign_spec(con, campaign_id)
    counts = con.execute("""
        SELECT count(*) AS drafts,
               count(*) FILTER (WHERE a.draft_id IS NULL) AS waiting,
               count(a.draft_id) FILTER (WHERE a.decision = 'approved') AS approved,
               count(a.draft_id) FILTER (WHERE a.decision = 'edited') AS edited,
               count(a.draft_id) FILTER (WHERE a.decision = 'rejected') AS rejected
        FROM drafts d LEFT JOIN approvals a USING (draft_id) WHERE d.campaign_id = ? AND d.touch = ?
    """, [campaign_id, touch]).df().iloc[0].to_dict()
    waiting = con.execute("""
        SELECT d.*, l.first_name, l.last_name, l.company, l.role,
               CASE WHEN d.channel = 'email' THEN l.email ELSE l.phone END AS to_address, p.body AS reply_body
        FROM drafts d JOIN leads l USING (lead_id) LEFT JOIN replies p ON p.reply_id = d.reply_id
        WHERE d.campaign_id = ? AND d.touch = ? AND NOT EXISTS (SELECT 1 FROM approvals a WHERE a.draft_id = d.draft_id)
        ORDER BY d.draft_id
    """, [campaign_id, touch]).df()
    snippets = con.execute("""
        SELECT snippet_id, source_url, title, text FROM research_snippets
        WHERE campaign_id = ? AND lead_id IN (SELECT lead_id FROM drafts WHERE campaign_id = ? AND touch = ?)
    """, [campaign_id, campaign_id, touch]).df()
    return TouchReview(campaign_id, touch, spec.approval, {k: int(v) for k, v in counts.items()}, waiting, snippets)


def _lead(row) -> str:
    name = " ".join(str(p) for p in (row.first_name, row.last_name) if isinstance(p, str) and p)
    where = ", ".join(str(p) for p in (row.role, row.company) if isinstance(p, str) and p)
    return f"{name} ({where})" if where else name


def _citations(row, snippets: pd.DataFrame) -> list[pd.Series]:
    by_id = snippets.set_index("snippet_id") if not snippets.empty else pd.DataFrame()
    return [by_id.loc[sid] for sid in json.loads(row.cited_snippet_ids) if sid in by_id.index]


def _one_line(text: str, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def touch_label(touch: int) -> str:
    return "answers to replies" if touch == REPLY_TOUCH else f"touch {touch}"


def _answering(row) -> str | None:
    """For an answer draft, the lead's reply it answers."""
    body = getattr(row, "reply_body", None)
    return body if isinstance(body, str) else None


def counts_line(review: TouchReview) -> str:
    c = review.counts
    return (f"{c['drafts']} drafts: {c['waiting']} waiting, {c['approved']} approved, {c['edited']} edited, "
            f"{c['rejected']} rejected (approval mode: {review.mode})")


def review_queue_markdown(review: TouchReview, limit: int = 25) -> str:
    """The waiting drafts as Markdown: counts, an overview table, then each draft with the snippets (and URLs) it cites."""
    head = f"**{review.campaign_id} {touch_label(review.touch)}**: {counts_line(review)}"
    if review.waiting.empty:
        return head + "\n\n_Nothing is waiting for review._"
    shown = review.waiting.head(limit)
    overview = pd.DataFrame({
        "draft_id": shown["draft_id"].map(lambda d: f"`{d}`"),
        "lead": [_lead(r) for r in shown.itertuples(index=False)],
        "channel": shown["channel"],
        "text": [_one_line(r.subject if isinstance(r.subject, str) and r.subject else r.body) for r in shown.itertuples(index=False)],
        "snippets": [len(json.loads(c)) for c in shown["cited_snippet_ids"]],
    })
    blocks = []
    for row in shown.itertuples(index=False):
        cites = [f"- [{s['title']}]({s['source_url']}): {_one_line(s['text'], 240)}" for s in _citations(row, review.snippets)]
        flags = json.loads(row.flags)
        blocks.append(
            f"#### `{row.draft_id}` · {_lead(row)} · {row.channel} to {row.to_address}\n\n"
            + (f"**Subject:** {row.subject}\n\n" if isinstance(row.subject, str) and row.subject else "")
            + "\n".join(f"> {line}  " if line.strip() else ">" for line in str(row.body).splitlines())  # hard breaks keep the lines
            + ("\n\n**Flags:** " + ", ".join(flags) if flags else "")
            + ("\n\n**Answering their reply:**\n\n> " + _one_line(_answering(row), 400) if _answering(row)
               else "\n\n**Grounded in:**\n\n" + ("\n".join(cites) or "- (no cited snippet found)"))
        )
    more = f"\n\n_{len(review.waiting) - limit} more waiting; `outbound review list` shows them all._" if len(review.waiting) > limit else ""
    return head + "\n\n" + md_table(overview, limit) + "\n\n---\n\n" + "\n\n---\n\n".join(blocks) + more


def review_queue_text(review: TouchReview) -> str:
    """The whole queue for a terminal: every waiting draft, its text and its cited snippets with URLs."""
    lines = [f"{review.campaign_id} {touch_label(review.touch)}: {counts_line(review)}"]
    for row in review.waiting.itertuples(index=False):
        lines += ["", "=" * 78, f"{row.draft_id}  {row.channel} to {row.to_address}", f"lead: {_lead(row)}"]
        if isinstance(row.subject, str) and row.subject:
            lines.append(f"subject: {row.subject}")
        lines += ["", *(f"    {line}" for line in str(row.body).splitlines()), ""]
        flags = json.loads(row.flags)
        if flags:
            lines.append(f"flags: {', '.join(flags)}")
        if _answering(row):
            lines.append(f"answering their reply: {_one_line(_answering(row), 300)}")
            continue
        lines.append("grounded in:")
        cites = _citations(row, review.snippets)
        lines += [f"  - {s['title']} <{s['source_url']}>\n    {_one_line(s['text'], 200)}" for s in cites] or ["  - (no cited snippet found)"]
    if review.waiting.empty:
        lines.append("Nothing is waiting for review.")
    return "\n".join(lines)


def decisions_markdown(rows: pd.DataFrame) -> str:
    return md_table(rows[["draft_id", "decision", "reviewer", "note"]], 50) if not rows.empty else "_none_"
