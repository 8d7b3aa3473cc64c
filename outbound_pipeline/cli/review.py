"""`outbound review`: the review queue from a terminal.

Decisions go through the same `decide()` rules and write the same `approvals` rows as
the launchpad. Recording a decision sends nothing by itself: approved drafts go out with
the touch's next run (the cadence sensor), or straight away with `outbound review send`,
which materialises `outbox` and `sends` (behind the blocking check) for the touch.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from outbound_pipeline import settings
from outbound_pipeline.defs.partitions import touch_is_open
from outbound_pipeline.domain.review import ReviewError, ReviewRequest
from outbound_pipeline.domain.touches import REPLY_TOUCH, parse_touch, touch_key
from outbound_pipeline.engine.review_queue import load_review, record_decisions, review_queue_text
from outbound_pipeline.runner import SEND, Driver, dagster_instance, pipeline_now
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.drafts import draft_touches


def _request(args: argparse.Namespace, **decisions: Any) -> ReviewRequest:
    return ReviewRequest(reviewer=args.reviewer or "", note=args.note or None, **decisions)


def _record(by_touch: dict[tuple[str, int], ReviewRequest]) -> None:
    """Record every touch's request in one transaction: all of them, or (on any refusal) none."""
    with warehouse.connect(settings.duckdb_path()) as con:
        con.execute("BEGIN")
        try:
            done = [(c, t, record_decisions(con, c, t, request, pipeline_now())) for (c, t), request in by_touch.items()]
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    for campaign, touch, rows in done:
        tally = ", ".join(f"{n} {d}" for d, n in rows["decision"].value_counts().sort_index().items()) or "nothing"
        print(f"{touch_key(campaign, touch)}: recorded {tally} (reviewer {rows['reviewer'].iloc[0] if len(rows) else '-'})")
    touches = sorted({(c, t) for c, t, _ in done})
    print("Approved drafts go out with the touch's next run, or now with: "
          + "; ".join(f"outbound review send --campaign {c} --touch {'reply' if t == REPLY_TOUCH else t}" for c, t in touches))


def _touches_of(draft_ids: list[str]) -> dict[str, tuple[str, int]]:
    """draft id -> (campaign, touch); unknown ids are an error."""
    with warehouse.connect(settings.duckdb_path()) as con:
        where = draft_touches(con, draft_ids)
    unknown = [d for d in draft_ids if d not in where]
    if unknown:
        raise ReviewError(f"no such draft: {', '.join(unknown)} (see `outbound review list`)")
    return where


def _by_touch(draft_ids: list[str]) -> dict[tuple[str, int], list[str]]:
    groups: dict[tuple[str, int], list[str]] = {}
    for draft_id, where in _touches_of(draft_ids).items():
        groups.setdefault(where, []).append(draft_id)
    return groups


def _list(args: argparse.Namespace) -> int:
    with warehouse.connect(settings.duckdb_path()) as con:
        review = load_review(con, args.campaign, args.touch)
    if args.limit is not None:
        review.waiting = review.waiting.head(args.limit)
    print(review_queue_text(review))
    return 0


def _approve(args: argparse.Namespace) -> int:
    _record({where: _request(args, approve=ids) for where, ids in _by_touch(args.draft_ids).items()})
    return 0


def _reject(args: argparse.Namespace) -> int:
    _record({where: _request(args, reject=ids) for where, ids in _by_touch(args.draft_ids).items()})
    return 0


def _read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")


def _edit(args: argparse.Namespace) -> int:
    text = args.text if args.file is None else _read_text(args.file)
    (where,) = _touches_of([args.draft_id]).values()
    _record({where: _request(args, edits={args.draft_id: text.strip("\n")})})
    return 0


def _approve_rest(args: argparse.Namespace) -> int:
    _record({(args.campaign, args.touch): _request(args, approve_all_remaining=True)})
    return 0


def _send(args: argparse.Namespace) -> int:
    """Materialise `outbox` and `sends` for the touch, with the blocking check, recorded in DAGSTER_HOME."""
    key = touch_key(args.campaign, args.touch)
    instance = dagster_instance()
    if not touch_is_open(instance, args.campaign, args.touch):
        raise ReviewError(f"touch {key} has not been opened (no drafts yet): nothing to send")
    driver = Driver(instance, str(settings.duckdb_path()), quiet=False, simulated=False)
    result = driver.run(SEND, pipeline_now(), key, tags={"outbound/trigger": "outbound review send"}, raise_on_error=False)
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "outbox_only_approved"]
    if checks and not checks[0].passed:
        print(f"{key}: the outbox holds messages without a matching approval; nothing was sent. Run {result.run_id} has the details.",
              file=sys.stderr)
        return 1
    if not result.success:
        print(f"{key}: the send run failed; see run {result.run_id} in the Dagster UI.", file=sys.stderr)
        return 1
    queued = result.asset_materializations_for_node("outbox")[0].metadata
    sent = result.asset_materializations_for_node("sends")[0].metadata
    shown = {k: sent[k].value for k in ("sent", "failed", "suppressed", "deferred_by_window", "held_because") if k in sent}
    print(f"{key}: queued {queued['queued'].value}; " + ", ".join(f"{k} {v}" for k, v in shown.items()) + f" (run {result.run_id})")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    review = subparsers.add_parser("review", help="list the review queue of a touch and approve, edit or reject drafts")
    sub = review.add_subparsers(dest="review_command", required=True)

    def touch_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--campaign", required=True)
        p.add_argument("--touch", type=parse_touch, required=True,
                       help="1-based touch number, or 'reply' for answers to replies (reply_mode: ai)")

    def who(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reviewer", default=os.environ.get("OUTBOUND_REVIEWER"), help="who decides (default: $OUTBOUND_REVIEWER)")
        p.add_argument("--note", help="why; kept on each approval row")

    listing = sub.add_parser("list", help="the drafts of a touch waiting for review, with their cited snippets")
    touch_args(listing)
    listing.add_argument("--limit", type=int, help="show at most this many drafts")
    listing.set_defaults(func=_list)

    for name, func, text in (("approve", _approve, "approve drafts as written"), ("reject", _reject, "reject drafts: they are never sent")):
        p = sub.add_parser(name, help=text)
        p.add_argument("draft_ids", nargs="+", metavar="DRAFT_ID")
        who(p)
        p.set_defaults(func=func)

    edit = sub.add_parser("edit", help="replace a draft's text and approve it (the original is kept)")
    edit.add_argument("draft_id", metavar="DRAFT_ID")
    source = edit.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the new text")
    source.add_argument("--file", help="read the new text from this file ('-' for stdin)")
    who(edit)
    edit.set_defaults(func=_edit)

    rest = sub.add_parser("approve-rest", help="approve every draft of the touch still waiting (batch mode: after the spot check)")
    touch_args(rest)
    who(rest)
    rest.set_defaults(func=_approve_rest)

    send = sub.add_parser("send", help="queue and send what is approved for a touch now (outbox + sends, behind the blocking check)")
    touch_args(send)
    send.set_defaults(func=_send)
