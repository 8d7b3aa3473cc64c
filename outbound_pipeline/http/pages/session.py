"""Signing in to the pages with a key, the session it opens, and the CSRF check every page action goes through.

The sign-in form is protected by a double-submit token (a random cookie repeated in the form), so another site cannot
sign a browser in under its own key; after sign-in every POST carries the session's CSRF token (a form field, or the
`X-CSRF-Token` header from the pages' scripts) and the cookie is SameSite=Strict. Pages send a Content-Security-Policy
that allows scripts and styles from this server only.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from outbound_pipeline.http import auth
from outbound_pipeline.http.api_context import Surface

HERE = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))
SIGNIN_COOKIE = "outbound_signin"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'"


class SignInRequired(Exception):
    """Send the browser to the sign-in page, then back."""

    def __init__(self, next_path: str):
        self.next_path = next_path


class Forbidden(Exception):
    """A page action without its session's CSRF token."""


@dataclass(frozen=True)
class Viewer:
    caller: auth.Caller
    session: auth.Session


def secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(request: Request, template: str, viewer: Viewer | None, status_code: int = 200, **context: Any) -> Response:
    page = TEMPLATES.TemplateResponse(request, template, {"viewer": viewer, "csrf": viewer.session.csrf if viewer else "", **context},
                                      status_code=status_code)
    return secured(page)


def _local(path: str | None) -> str:
    """Only a path on this server is a place to go back to."""
    return path if path and path.startswith("/") and not path.startswith(("//", "/\\")) else "/inbox"


class Sessions:
    """Who is signed in, from the request's cookie."""

    def __init__(self, surface: Surface):
        self.surface = surface
        self.secret = auth.session_secret()

    def viewer(self, request: Request) -> Viewer:
        session = auth.read_session(self.secret, request.cookies.get(auth.SESSION_COOKIE))
        caller = None
        if session is not None:
            with self.surface.read() as con:
                caller = auth.caller_by_id(con, session.key_id)
        if session is None or caller is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise SignInRequired(target)
        return Viewer(caller, session)

    async def acting(self, request: Request) -> tuple[Viewer, dict[str, str]]:
        """The signed-in viewer of a page action and its form fields, once its CSRF token has been checked."""
        viewer = self.viewer(request)
        form = await request.form(max_files=0, max_fields=20)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        token = request.headers.get("x-csrf-token") or fields.get("csrf")
        if not auth.csrf_ok(viewer.session, token):
            raise Forbidden()
        return viewer, fields


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def sign_in_router(sessions: Sessions) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/signin")
    def signin_page(request: Request, next: str | None = None, error: str | None = None) -> Response:
        nonce = secrets.token_urlsafe(24)
        page = render(request, "signin.html", None, next=_local(next), nonce=nonce, error=error)
        page.set_cookie(SIGNIN_COOKIE, nonce, httponly=True, samesite="strict", secure=sessions.surface.secure_cookies, max_age=1800)
        return page

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=10)
        nonce, key, target = (str(form.get(k) or "") for k in ("nonce", "key", "next"))
        cookie = request.cookies.get(SIGNIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(nonce, cookie):
            return RedirectResponse(f"/signin?next={quote(_local(target))}&error=expired", status_code=303)
        with sessions.surface.read() as con:
            caller = auth.verify_key(con, key)
        if caller is None:
            return RedirectResponse(f"/signin?next={quote(_local(target))}&error=wrong", status_code=303)
        value, _ = auth.issue_session(sessions.secret, caller.key_id)
        response = RedirectResponse(_local(target), status_code=303)
        response.set_cookie(auth.SESSION_COOKIE, value, httponly=True, samesite="strict", secure=sessions.surface.secure_cookies,
                            max_age=auth.SESSION_SECONDS)
        response.delete_cookie(SIGNIN_COOKIE)
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        await sessions.acting(request)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(auth.SESSION_COOKIE)
        return response

    @router.get("/")
    def home() -> Response:
        return RedirectResponse("/inbox", status_code=303)

    return router


def install_page_errors(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def to_signin(request: Request, exc: SignInRequired) -> Response:
        if wants_json(request) or request.method != "GET":
            return secured(HTMLResponse("sign in first", status_code=401)) if not wants_json(request) else _json(401, "sign in first")
        return RedirectResponse(f"/signin?next={quote(exc.next_path)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _json(403, "missing or wrong CSRF token: reload the page") if wants_json(request) else secured(
            HTMLResponse("Forbidden: reload the page and try again.", status_code=403))


def _json(status: int, message: str) -> Response:
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status)
