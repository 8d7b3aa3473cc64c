"""The review queue of one touch: reading it, recording decisions on it, and showing it.

Shared by the `approvals` asset (launchpad) and `outbound review` (terminal), so both
read the same rows, apply the same `decide()` rules and write the same approvals rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from outbound_pipeline.domain.review import ReviewError, ReviewRequest, decide, held_for_review
from outbound_pipeline.domain.touches import REPLY_TOUCH
from outbound_pipeline.store import drafts as draft_store
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.research import snippets_of_touch


@dataclass
class TouchReview:
    """What a reviewer of one touch needs: counts, the waiting drafts with their leads, and the research."""

    campaign_id: str
    touch: int
    mode: str
    counts: dict[str, int]
    waiting: pd.DataFrame
    snippets: pd.DataFrame
    send_with_missing: bool = False

    @property
    def held(self) -> int:
        """Waiting drafts that automatic approval leaves for a person (a template variable is missing)."""
        if self.mode != "auto" or self.waiting.empty:
            return 0
        return int(held_for_review(self.waiting, self.send_with_missing).sum())


def record_decisions(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int, request: ReviewRequest, now: datetime) -> pd.DataFrame:
    """Apply `request` to the touch under the campaign's approval mode and insert the approval rows; returns them.

    The read and the insert share one connection, which holds DuckDB's single write lock,
    so no other writer can decide the same draft in between.
    """
    spec = campaign_spec(con, campaign_id)
    drafts = draft_store.touch_drafts(con, campaign_id, touch)
    decided = draft_store.touch_decisions(con, campaign_id, touch)
    asks = request.approve or request.reject or request.edits or request.approve_all_remaining
    if drafts.empty and asks:
        raise ReviewError(f"{campaign_id} touch {touch} has no drafts to decide on")
    rows = decide(drafts, decided, spec.approval, request, now, spec.batch_spot_check, spec.send_with_missing)
    recorded = draft_store.insert_approvals(con, rows)
    if recorded != len(rows):
        raise ReviewError(f"{len(rows) - recorded} of these drafts were decided by someone else meanwhile; nothing else changed, list the queue again")
    return rows


def load_review(con: duckdb.DuckDBPyConnection, campaign_id: str, touch: int) -> TouchReview:
    """Counts and waiting drafts of a touch, read in one short connection."""
    spec = campaign_spec(con, campaign_id)
    counts = draft_store.review_counts(con, campaign_id, touch)
    waiting = draft_store.waiting_for_review(con, campaign_id, touch)
    snippets = snippets_of_touch(con, campaign_id, touch)
    return TouchReview(campaign_id, touch, spec.approval, counts, waiting, snippets, spec.send_with_missing)


Row = dict[str, Any]  # a waiting draft with its lead, as `store.drafts.waiting_for_review` reads it


def _text(value: object) -> str | None:
    """A cell's text; None for NULL, NaN and empty strings."""
    return value if isinstance(value, str) and value else None


def _lead(row: Row) -> str:
    name = " ".join(p for p in (_text(row["first_name"]), _text(row["last_name"])) if p)
    where = ", ".join(p for p in (_text(row["role"]), _text(row["company"])) if p)
    return f"{name} ({where})" if where else name


def _citations(row: Row, snippets: pd.DataFrame) -> list[Row]:
    records: list[Row] = snippets.to_dict("records")  # type: ignore[assignment]
    by_id = {str(s["snippet_id"]): s for s in records}
    return [by_id[sid] for sid in json.loads(row["cited_snippet_ids"]) if sid in by_id]


def _one_line(text: object, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _rendered(row: Row) -> bool:
    """A draft rendered from the step's template: it cites no research."""
    return row.get("composer") == "template"


def _answering(row: Row) -> str | None:
    """For an answer draft, the lead's reply it answers."""
    return _text(row.get("reply_body"))


def markdown_table(frame: pd.DataFrame, max_rows: int = 50) -> str:
    """A Markdown table of the first `max_rows` rows; pipes and line breaks in cells cannot break it."""
    if frame.empty:
        return "_none_"
    cells = frame.head(max_rows).astype(object).where(frame.head(max_rows).notna(), "")
    cells = cells.map(lambda v: str(v).replace("|", "\\|").replace("\n", "<br>") if isinstance(v, str) else v)
    more = f"\n\n_{len(frame) - max_rows} more rows not shown_" if len(frame) > max_rows else ""
    return cells.to_markdown(index=False, stralign=None, numalign=None) + more  # unpadded: compact, and the header reads as written


def touch_label(touch: int) -> str:
    return "answers to replies" if touch == REPLY_TOUCH else f"touch {touch}"


def counts_line(review: TouchReview) -> str:
    c = review.counts
    held = review.held
    return (f"{c['drafts']} drafts: {c['waiting']} waiting, {c['approved']} approved, {c['edited']} edited, "
            f"{c['rejected']} rejected (approval mode: {review.mode})"
            + (f"; {held} held for a person: a template variable is missing (decide them by id)" if held else ""))


def _draft_block(row: Row, snippets: pd.DataFrame) -> str:
    """One waiting draft in full: lead, address, subject, text, flags, and what it is grounded in (or answers)."""
    cites = [f"- [{s['title']}]({s['source_url']}): {_one_line(s['text'], 240)}" for s in _citations(row, snippets)]
    flags = json.loads(row["flags"])
    subject = _text(row["subject"])
    answering = _answering(row)
    return (
        f"#### `{row['draft_id']}` · {_lead(row)} · {row['channel']} to {row['to_address']}\n\n"
        + (f"**Subject:** {subject}\n\n" if subject else "")
        + "\n".join(f"> {line}  " if line.strip() else ">" for line in str(row["body"]).splitlines())  # hard breaks keep the lines
        + ("\n\n**Flags:** " + ", ".join(flags) if flags else "")
        + ("\n\n**Answering their reply:**\n\n> " + _one_line(answering, 400) if answering
           else "\n\n_Rendered from the step's template (no research)._" if _rendered(row)
           else "\n\n**Grounded in:**\n\n" + ("\n".join(cites) or "- (no cited snippet found)"))
    )


def review_queue_markdown(review: TouchReview, limit: int = 25) -> str:
    """The waiting drafts as Markdown: counts, an overview table, then each draft with the snippets (and URLs) it cites."""
    head = f"**{review.campaign_id} {touch_label(review.touch)}**: {counts_line(review)}"
    if review.waiting.empty:
        return head + "\n\n_Nothing is waiting for review._"
    shown: list[Row] = review.waiting.head(limit).to_dict("records")  # type: ignore[assignment]
    overview = pd.DataFrame({
        "draft_id": [f"`{r['draft_id']}`" for r in shown],
        "lead": [_lead(r) for r in shown],
        "channel": [r["channel"] for r in shown],
        "text": [_one_line(_text(r["subject"]) or r["body"]) for r in shown],
        "snippets": [len(json.loads(r["cited_snippet_ids"])) for r in shown],
    })
    blocks = [_draft_block(r, review.snippets) for r in shown]
    more = f"\n\n_{len(review.waiting) - limit} more waiting; `outbound review list` shows them all._" if len(review.waiting) > limit else ""
    return head + "\n\n" + markdown_table(overview, limit) + "\n\n---\n\n" + "\n\n---\n\n".join(blocks) + more


def review_queue_text(review: TouchReview) -> str:
    """The whole queue for a terminal: every waiting draft, its text and its cited snippets with URLs."""
    lines = [f"{review.campaign_id} {touch_label(review.touch)}: {counts_line(review)}"]
    rows: list[Row] = review.waiting.to_dict("records")  # type: ignore[assignment]
    for row in rows:
        lines += ["", "=" * 78, f"{row['draft_id']}  {row['channel']} to {row['to_address']}", f"lead: {_lead(row)}"]
        subject = _text(row["subject"])
        if subject:
            lines.append(f"subject: {subject}")
        lines += ["", *(f"    {line}" for line in str(row["body"]).splitlines()), ""]
        flags = json.loads(row["flags"])
        if flags:
            lines.append(f"flags: {', '.join(flags)}")
        answering = _answering(row)
        if answering:
            lines.append(f"answering their reply: {_one_line(answering, 300)}")
            continue
        if _rendered(row):
            lines.append("rendered from the step's template (no research)")
            continue
        lines.append("grounded in:")
        cites = _citations(row, review.snippets)
        lines += [f"  - {s['title']} <{s['source_url']}>\n    {_one_line(s['text'], 200)}" for s in cites] or ["  - (no cited snippet found)"]
    if review.waiting.empty:
        lines.append("Nothing is waiting for review.")
    return "\n".join(lines)


def decisions_markdown(rows: pd.DataFrame) -> str:
    return markdown_table(rows[["draft_id", "decision", "reviewer", "note"]], 50) if not rows.empty else "_none_"
