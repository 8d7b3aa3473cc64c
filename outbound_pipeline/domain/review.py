"""Turning a reviewer's request into approval rows, with the rules that keep it safe.

Used by the `approvals` asset (launchpad config) and by `outbound review` alike, so
the terminal and the UI enforce exactly the same rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from outbound_pipeline.domain.templates import MISSING_FLAG
from outbound_pipeline.ids import stable_id

# Longest text a channel takes (Twilio `Body` limit for SMS, WhatsApp's message limit); email has none.
MAX_CHARS = {"sms": 1600, "whatsapp": 4096}


class ReviewError(ValueError):
    """A review request that cannot be applied as asked; nothing of it is recorded."""


@dataclass(frozen=True)
class ReviewRequest:
    reviewer: str
    approve: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)
    edits: dict[str, str] = field(default_factory=dict)
    approve_all_remaining: bool = False
    note: str | None = None


def held_for_review(drafts: pd.DataFrame, send_with_missing: bool = False) -> pd.Series:
    """Drafts that automatic approval leaves for a person: a template variable is missing (its placeholder shows),
    unless the campaign says `send_with_missing: true`."""
    if send_with_missing or drafts.empty or "flags" not in drafts.columns:
        return pd.Series(False, index=drafts.index, dtype=bool)
    return drafts["flags"].map(lambda flags: any(str(f).startswith(MISSING_FLAG) for f in json.loads(flags or "[]"))).astype(bool)


def decide(drafts: pd.DataFrame, decided: pd.DataFrame, mode: str, request: ReviewRequest, now: datetime,
           spot_check: int = 0, send_with_missing: bool = False) -> pd.DataFrame:
    """Approval rows for this request. `drafts` are the partition's drafts, `decided` its approval rows so far.

    auto: every undecided draft is approved by "auto", except those held for a person (`held_for_review`):
    they wait in the queue, and a reviewer decides them by name as in manual mode. manual and batch: only
    what the reviewer named; `approve_all_remaining` in batch mode needs `spot_check` drafts decided one by
    one first. An empty request records nothing (the touch run only refreshes the queue).
    """
    known = set(drafts["draft_id"])
    already = set(decided["draft_id"])
    undecided = drafts[~drafts["draft_id"].isin(already)]
    named = [*request.approve, *request.reject, *request.edits]
    if mode == "auto":
        held = held_for_review(undecided, send_with_missing)
        if not named and not request.approve_all_remaining:
            return _rows(undecided[~held], "approved", "auto", "auto", now, {},
                         request.note or "auto-approved: campaign approval mode is auto")
        held_ids = set(drafts.loc[held_for_review(drafts, send_with_missing), "draft_id"])
        not_held = sorted(set(named) - held_ids)
        if not_held or not held_ids:
            raise ReviewError("this campaign approves automatically (approval: auto); only drafts held for a person (a missing "
                              "template variable) are decided by hand" + (f"; not held: {', '.join(not_held)}" if not_held else ""))
        # A person decides the held drafts under the manual rules; everything else stays the machine's.
        return decide(drafts[drafts["draft_id"].isin(held_ids)], decided[decided["draft_id"].isin(held_ids)], "manual", request, now)
    if not named and not request.approve_all_remaining:
        return _rows(drafts.iloc[0:0], "approved", mode, "", now, {}, None)

    unknown = sorted(set(named) - known)
    if unknown:
        raise ReviewError(f"not drafts of this touch: {', '.join(unknown)}")
    twice = sorted({d for d in named if named.count(d) > 1})
    if twice:
        raise ReviewError(f"each draft takes one decision, these were given several: {', '.join(twice)}")
    redecided = sorted(set(named) & already)
    if redecided:
        earlier: dict[str, dict[str, object]] = decided.set_index("draft_id").to_dict("index")  # type: ignore[assignment]
        described = [
            f"{d} ({earlier[d]['decision']}" + (f" by {earlier[d]['reviewer']}" if "reviewer" in earlier[d] else "")
            + (f" at {earlier[d]['decided_at']}" if "decided_at" in earlier[d] else "") + ")"
            for d in redecided
        ]
        raise ReviewError(f"already decided, and decisions are final (the approvals row is the audit trail): {'; '.join(described)}")
    empty_edits = sorted(d for d, text in request.edits.items() if not text.strip())
    if empty_edits:
        raise ReviewError(f"an edit must carry the new text; empty for: {', '.join(empty_edits)}")
    by_channel = drafts.set_index("draft_id")["channel"]
    too_long = sorted(d for d, text in request.edits.items() if len(text) > MAX_CHARS.get(by_channel[d], len(text)))
    if too_long:
        raise ReviewError("edited text is longer than its channel allows ("
                          + ", ".join(f"{d}: {by_channel[d]} takes {MAX_CHARS[by_channel[d]]}" for d in too_long) + ")")
    reviewer = request.reviewer.strip()
    if not reviewer:
        raise ReviewError("a reviewer name is required: `reviewer` in the launchpad config or the run's `reviewer` tag; "
                          "--reviewer or $OUTBOUND_REVIEWER in the terminal")
    if reviewer == "auto":
        raise ReviewError("'auto' is reserved for automatic approvals; give the reviewer's own name")

    by_id = drafts.set_index("draft_id", drop=False)
    parts = [
        _rows(by_id.loc[request.approve], "approved", mode, reviewer, now, {}, request.note),
        _rows(by_id.loc[request.reject], "rejected", mode, reviewer, now, {}, request.note),
        _rows(by_id.loc[list(request.edits)], "edited", mode, reviewer, now, request.edits, request.note),
    ]
    if request.approve_all_remaining:
        individually = len(already) + len(named)
        needed = min(spot_check, len(known))
        if mode == "batch" and individually < needed:
            raise ReviewError(f"batch approval needs {needed} drafts spot-checked one by one first (approve, reject or edit them "
                              f"by id, in this request or earlier); {individually} so far")
        rest = undecided[~undecided["draft_id"].isin(named)]
        parts.append(_rows(rest, "approved", mode, reviewer, now, {}, request.note or "approved with the rest of the touch"))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else _rows(drafts.iloc[0:0], "approved", mode, reviewer, now, {}, None)


def _rows(drafts: pd.DataFrame, decision: str, mode: str, reviewer: str, now: datetime, edits: dict[str, str], note: str | None) -> pd.DataFrame:
    final = drafts["draft_id"].map(edits).fillna(drafts["body"]) if edits else drafts["body"]
    return pd.DataFrame({
        "approval_id": [stable_id("apr", d) for d in drafts["draft_id"]],
        "draft_id": drafts["draft_id"].to_numpy(),
        "campaign_id": drafts["campaign_id"].to_numpy(),
        "touch": drafts["touch"].to_numpy(),
        "decision": decision,
        "mode": mode,
        "reviewer": reviewer,
        "original_body": drafts["body"].to_numpy(),
        "final_subject": drafts["subject"].to_numpy() if decision != "rejected" else None,
        "final_body": final.to_numpy() if decision != "rejected" else None,
        "note": note,
        "decided_at": now,
    })
