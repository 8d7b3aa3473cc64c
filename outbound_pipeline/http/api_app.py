"""The HTTP surface served beside the webhooks: the REST API (/api, /openapi.json, /docs), sign-in, the review inbox
(/inbox) and the live campaign pages (/campaigns), as one FastAPI app mounted under the receiver."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Mount

from outbound_pipeline import settings
from outbound_pipeline.http.api import Api, build_api, install_errors
from outbound_pipeline.http.api_context import Surface
from outbound_pipeline.http.api_specs import MAX_CSV_BYTES
from outbound_pipeline.http.inbox import inbox_router
from outbound_pipeline.http.live import live_router
from outbound_pipeline.http.pages.session import HERE, Sessions, install_page_errors, sign_in_router

DESCRIPTION = """Campaigns over HTTP: create a campaign, upload its contacts as CSV, launch it (now or at `scheduled_at`),
watch its stats and contacts, pause, resume, stop or duplicate it. Every request needs `Authorization: Bearer <key>`
(`outbound apikey create NAME`). Errors are JSON: `{"error": "..."}`."""


MAX_BODY_BYTES = 1024 * 1024  # JSON and form bodies; CSV uploads have their own 5 MB limit
UPLOAD_BODY_BYTES = MAX_CSV_BYTES + 64 * 1024


def _body_limit(app: FastAPI) -> None:
    """Refuse a declared body over the limit with 413 before reading it (an upload may carry 5 MB, anything else 1 MB)."""

    @app.middleware("http")
    async def limit(request: Request, call_next: Any) -> Response:
        declared = request.headers.get("content-length", "")
        cap = UPLOAD_BODY_BYTES if request.url.path.endswith("/upload-csv") else MAX_BODY_BYTES
        if declared.isdigit() and int(declared) > cap:
            return JSONResponse({"error": f"request body larger than {cap // 1024} KiB"}, status_code=413, headers={"Connection": "close"})
        response: Response = await call_next(request)
        return response


def build_app(surface: Surface) -> FastAPI:
    app = FastAPI(title="outbound_pipeline API", version="1", description=DESCRIPTION, docs_url="/docs", redoc_url="/redoc",
                  openapi_url="/openapi.json")
    install_errors(app)
    install_page_errors(app)
    _body_limit(app)
    sessions = Sessions(surface)
    app.include_router(build_api(surface))
    app.include_router(sign_in_router(sessions))
    app.include_router(inbox_router(surface, sessions))
    app.include_router(live_router(surface, sessions, Api(surface)))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app


def surface_from_env() -> Surface:
    """Paths from the environment, the Dagster instance in DAGSTER_HOME, the pipeline clock (OUTBOUND_NOW when pinned)."""
    from outbound_pipeline.runner import dagster_instance, pipeline_now

    public = os.environ.get("OUTBOUND_PUBLIC_BASE_URL") or None
    return Surface(db_path=str(settings.duckdb_path()), campaigns_dir=Path(settings.campaigns_dir()), instance=functools.cache(dagster_instance),
                   now=pipeline_now, public_base_url=public, secure_cookies=bool(public and public.startswith("https://")))


def routes(surface: Surface) -> list[BaseRoute]:
    """The surface as routes for `http.app.create_app(extra_routes=...)`: mounted last, it answers what the webhooks do not."""
    return [Mount("", app=build_app(surface))]


def routes_from_env() -> list[BaseRoute]:
    return routes(surface_from_env())
