"""The review inbox: every draft waiting for a person, decided with one click, under the same rules as everywhere else.

A decision goes through `engine.review_queue.record_decisions` (the rules of `domain.review.decide`: a decision is final,
the reviewer is the signed-in key's name, approving the rest of a batch touch before its spot check is refused with the
reason) and is committed before the answer goes back, so it is durable and the queue shows it at once. Nothing is sent
from here: approved drafts go out with the touch's next run (approvals row, outbox, the blocking check, sends).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from outbound_pipeline.domain.review import MAX_CHARS, ReviewError, ReviewRequest
from outbound_pipeline.domain.templates import MISSING_FLAG
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.engine.review_queue import record_decisions, touch_label
from outbound_pipeline.http.api_context import Surface
from outbound_pipeline.http.pages.session import Sessions, render, wants_json
from outbound_pipeline.providers.sms_segments import count_segments
from outbound_pipeline.store import drafts as draft_store
from outbound_pipeline.store import review_inbox
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.research import snippets_of_leads

DECISIONS = {"approve": "approve", "reject": "reject", "edit": "edits"}


def flag_labels(flags: list[str], channel: str, body: str) -> list[dict[str, str]]:
    """The draft's flags in words a reviewer reads, each with a kind for its colour."""
    out = []
    for flag in flags:
        if flag.startswith(MISSING_FLAG):
            out.append({"kind": "missing", "text": f"missing variable: {flag[len(MISSING_FLAG):]}"})
        elif "recompos" in flag:
            out.append({"kind": "recomposed", "text": "recomposed"})
        elif flag in ("too_long", "subject_too_long"):
            out.append({"kind": "length", "text": "over length" + (" (subject)" if flag.startswith("subject") else "")})
        else:
            out.append({"kind": "other", "text": flag.replace("_", " ")})
    limit = MAX_CHARS.get(channel)
    if limit and len(body) > limit and not any(f["kind"] == "length" for f in out):
        out.append({"kind": "length", "text": f"over length ({len(body)} of {limit} characters)"})
    return out


def card(row: dict[str, Any], snippets: pd.DataFrame) -> dict[str, Any]:
    """What the inbox shows of one waiting draft."""
    body = str(row["body"])
    flags = json.loads(row["flags"] or "[]")
    cited = json.loads(row["cited_snippet_ids"] or "[]")
    mine = snippets[(snippets["lead_id"] == row["lead_id"]) & snippets["snippet_id"].isin(cited)] if not snippets.empty else snippets
    name = " ".join(str(p) for p in (row.get("first_name"), row.get("last_name")) if isinstance(p, str) and p)
    where = ", ".join(str(p) for p in (row.get("role"), row.get("company")) if isinstance(p, str) and p)
    encoding, segments = count_segments(body) if row["channel"] == "sms" else ("", 0)
    return {
        "draft_id": row["draft_id"], "campaign_id": row["campaign_id"], "touch": int(row["touch"]),
        "touch_label": touch_label(int(row["touch"])), "key": touch_key(str(row["campaign_id"]), int(row["touch"])), "lead": name, "where": where, "channel": row["channel"],
        "to": row.get("to_address") or "", "subject": row.get("subject") if isinstance(row.get("subject"), str) else None,
        "body": body, "chars": len(body), "encoding": encoding, "segments": segments, "flags": flag_labels(flags, row["channel"], body),
        "template": row.get("composer") == "template", "reply": row.get("reply_body") if isinstance(row.get("reply_body"), str) else None,
        "snippets": [{"title": s["title"], "url": s["source_url"], "text": str(s["text"])[:280]} for s in mine.to_dict("records")],
        "created_at": row["created_at"], "mode": row.get("approval_mode"),
    }


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    touch = q.get("touch", "")
    flagged = q.get("flagged", "")
    return {"campaign": q.get("campaign") or None, "touch": int(touch) if touch.lstrip("-").isdigit() else None,
            "channel": q.get("channel") or None, "flagged": {"yes": True, "no": False}.get(flagged), "q": q.get("q", "")}


def inbox_router(surface: Surface, sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def load(filters: dict[str, Any]) -> dict[str, Any]:
        with surface.read() as con:
            waiting, total = review_inbox.waiting_drafts(con, **filters)
            touches = review_inbox.waiting_by_touch(con)
            specs = {c: campaign_spec(con, c) for c in touches["campaign_id"].unique()}
            found = [snippets_of_leads(con, str(c), [str(x) for x in g["lead_id"].unique()]) for c, g in waiting.groupby("campaign_id")]
            snippets = pd.concat(found, ignore_index=True) if found else pd.DataFrame()
        groups = []
        for t in touches.to_dict("records"):
            spec = specs[t["campaign_id"]]
            needed = min(spec.batch_spot_check, int(t["drafts"])) if t["approval_mode"] == "batch" else 0
            groups.append({**t, "label": touch_label(int(t["touch"])), "key": touch_key(t["campaign_id"], int(t["touch"])),
                           "spot_check": needed, "spot_check_left": max(0, needed - int(t["decided"]))})
        cards = [card({str(k): v for k, v in r.items()}, snippets) for r in waiting.to_dict("records")]
        return {"cards": cards, "total": total, "groups": groups}

    @router.get("/inbox")
    def inbox(request: Request) -> Response:
        viewer = sessions.viewer(request)
        filters = _filters(request)
        data = load(filters)
        return render(request, "inbox.html", viewer, filters=filters, notice=request.query_params.get("notice"),
                      error=request.query_params.get("error"), **data)

    @router.get("/inbox/counts.json")
    def counts(request: Request) -> Response:
        sessions.viewer(request)
        with surface.read() as con:
            touches = review_inbox.waiting_by_touch(con)
        return JSONResponse({"waiting": int(touches["waiting"].sum()) if not touches.empty else 0,
                             "touches": [{"campaign_id": t["campaign_id"], "touch": int(t["touch"]), "waiting": int(t["waiting"]),
                                          "decided": int(t["decided"])} for t in touches.to_dict("records")]})

    def answer(request: Request, ok: bool, message: str, status: int, extra: dict[str, Any] | None = None) -> Response:
        if wants_json(request):
            return JSONResponse({"ok": ok, ("message" if ok else "error"): message, **(extra or {})}, status_code=status)
        back = request.headers.get("referer") or "/inbox"
        back = back if back.startswith(str(request.base_url)) else "/inbox"
        sep = "&" if "?" in back else "?"
        back = back.split("notice=")[0].split("error=")[0].rstrip("&?")
        return RedirectResponse(back + sep + urlencode({"notice" if ok else "error": message}), status_code=303)

    def decide(reviewer: str, campaign_id: str, touch: int, request_: ReviewRequest) -> pd.DataFrame:
        with surface.write() as con:
            con.execute("BEGIN")
            try:
                rows = record_decisions(con, campaign_id, touch, request_, surface.now())
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
            counts = draft_store.review_counts(con, campaign_id, touch)
        rows.attrs["counts"] = counts
        return rows

    @router.post("/inbox/decide")
    async def decide_one(request: Request) -> Response:
        viewer, form = await sessions.acting(request)
        draft_id, action, text = form.get("draft_id", ""), form.get("decision", ""), form.get("text", "")
        if action not in DECISIONS:
            return answer(request, False, f"unknown decision {action!r}: approve, reject or edit", 400)
        with surface.read() as con:
            where = draft_store.draft_touches(con, [draft_id])
        if draft_id not in where:
            return answer(request, False, f"no draft {draft_id!r}", 404)
        campaign_id, touch = where[draft_id]
        asked: dict[str, Any] = {"edits": {draft_id: text.replace("\r\n", "\n").strip("\n")}} if action == "edit" else {
            DECISIONS[action]: [draft_id]}
        try:
            rows = decide(viewer.caller.name, campaign_id, touch, ReviewRequest(reviewer=viewer.caller.name, **asked))
        except ReviewError as exc:
            return answer(request, False, str(exc), 409)
        decision = rows["decision"].iloc[0] if not rows.empty else "nothing"
        return answer(request, True, f"{draft_id}: {decision} by {viewer.caller.name}", 200,
                      {"draft_id": draft_id, "decision": decision, "counts": rows.attrs["counts"]})

    @router.post("/inbox/approve-rest")
    async def approve_rest(request: Request) -> Response:
        viewer, form = await sessions.acting(request)
        campaign_id, touch_text = form.get("campaign", ""), form.get("touch", "")
        if not touch_text.lstrip("-").isdigit():
            return answer(request, False, "touch must be a number", 400)
        try:
            rows = decide(viewer.caller.name, campaign_id, int(touch_text),
                          ReviewRequest(reviewer=viewer.caller.name, approve_all_remaining=True))
        except ReviewError as exc:
            return answer(request, False, str(exc), 409)
        except KeyError as exc:
            return answer(request, False, str(exc), 404)
        return answer(request, True, f"{touch_key(campaign_id, int(touch_text))}: {len(rows)} approved by {viewer.caller.name}", 200,
                      {"approved": len(rows), "draft_ids": list(rows["draft_id"]), "counts": rows.attrs["counts"]})

    return router
