"""The live campaign pages: every campaign with its status and numbers, and one campaign's funnel moving as it runs.

The funnel is the whole-campaign row of the rollup behind `campaign_metrics` (the same SQL, so the same definitions),
counted as of now; the pages poll a JSON twin of themselves. Pause, resume and stop go through the lifecycle state
machine like `outbound campaign pause|resume|stop`, recorded with the signed-in key's name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from outbound_pipeline.domain.limits import TIER_WINDOW_HOURS, OrgLimits
from outbound_pipeline.http.api import MESSAGE_STATUSES, VOICE_STATUSES, Api, records
from outbound_pipeline.http.api_context import ApiError, Surface
from outbound_pipeline.http.pages.session import Sessions, render, wants_json
from outbound_pipeline.store import api_campaigns as store
from outbound_pipeline.store.sends import whatsapp_numbers_opened

FUNNEL = ("queued", "sent", "delivered", "read", "replied", "failed")
ACTIONS = {"pause": "paused", "resume": "running", "stop": "stopped"}


def live_router(surface: Surface, sessions: Sessions, api: Api) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def tier() -> dict[str, Any]:
        """Today's WhatsApp tier use: numbers we opened a conversation with in the last 24 hours, against the allowance."""
        allowance = OrgLimits.from_env().whatsapp_tier
        with surface.read() as con:
            used = len(whatsapp_numbers_opened(con, surface.now() - timedelta(hours=TIER_WINDOW_HOURS)))
        return {"used": used, "allowance": allowance, "percent": round(100 * used / allowance) if allowance else None}

    def detail(campaign_id: str, search: str, status: str | None, page: int) -> dict[str, Any]:
        c = api.load(campaign_id)
        with surface.read() as con:
            metrics = api.live_metrics(con, campaign_id) if c["launched"] else None
        funnel = {k: int((metrics or {}).get(k) or 0) for k in FUNNEL}
        statuses = VOICE_STATUSES if c["channel"] == "voice" else MESSAGE_STATUSES
        people = api.contacts(campaign_id, page, 50, status if status in statuses else None, search or None)
        stats = api.stats(campaign_id)
        return {"campaign": api.view(c), "funnel": funnel, "metrics": metrics, "recipients": people, "contacts": stats["contacts"],
                "statuses": statuses,
                "progress": stats["progress"], "tier": tier(), "as_of": surface.now().isoformat()}

    @router.get("/campaigns")
    def campaigns(request: Request) -> Response:
        viewer = sessions.viewer(request)
        return render(request, "campaigns.html", viewer, campaigns=api.listing()["campaigns"], tier=tier())

    @router.get("/campaigns.json")
    def campaigns_json(request: Request) -> Response:
        sessions.viewer(request)
        return JSONResponse({"campaigns": api.listing()["campaigns"], "tier": tier()})

    @router.get("/campaigns/{campaign_id}")
    def campaign(campaign_id: str, request: Request, q: str = "", status: str = "", page: int = 1) -> Response:
        viewer = sessions.viewer(request)
        try:
            data = detail(campaign_id, q, status or None, max(1, page))
        except ApiError as exc:
            return render(request, "error.html", viewer, status_code=exc.status, message=exc.message)
        return render(request, "campaign.html", viewer, q=q, status=status, funnel_steps=FUNNEL,
                      notice=request.query_params.get("notice"), error=request.query_params.get("error"), **data)

    @router.get("/campaigns/{campaign_id}/live.json")
    def campaign_json(campaign_id: str, request: Request, q: str = "", status: str = "", page: int = 1) -> Response:
        sessions.viewer(request)
        data = detail(campaign_id, q, status or None, max(1, page))
        return JSONResponse({**data, "recipients": {**data["recipients"], "contacts": data["recipients"]["contacts"]}})

    @router.post("/campaigns/{campaign_id}/{action}")
    async def act(campaign_id: str, action: str, request: Request) -> Response:
        viewer, _ = await sessions.acting(request)
        if action not in ACTIONS:
            return JSONResponse({"error": f"unknown action {action!r}"}, status_code=404)
        actor = f"web:{viewer.caller.name}"
        try:
            result = api.move(campaign_id, ACTIONS[action], viewer.caller, via="web")
            ok, message, code = True, result["message"], 200
        except ApiError as exc:
            ok, message, code = False, exc.message, exc.status
        with surface.write() as con:
            store.audit(con, viewer.caller.name, "POST", request.url.path, campaign_id, action, code, message, surface.now())
        if wants_json(request):
            return JSONResponse({"ok": ok, "message" if ok else "error": message, "actor": actor}, status_code=code)
        return RedirectResponse(f"/campaigns/{campaign_id}?{urlencode({'notice' if ok else 'error': message})}", status_code=303)

    return router


__all__ = ["live_router", "records"]
