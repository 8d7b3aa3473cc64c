"""The REST API (seed 004's): campaigns created, filled with contacts, launched, watched and steered over HTTP.

Every route needs `Authorization: Bearer <key>` (`outbound apikey create NAME`); a missing or wrong key gets 401 and
changes nothing. Every change is recorded in `api_audit` with the key's name, and status moves in `campaign_events`
with `api:<name>` as actor. The work itself is the command line's: `outbound campaign create|launch|pause|resume|stop|
duplicate` (cli/campaign.py, through the lifecycle state machine), the contacts importer (domain/lead_list.py,
store/contacts.py). Errors are JSON `{"error": ...}` with 400, 401, 404, 409, 413, 422 or 503.
"""


import json
import re
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from outbound_pipeline.cli import campaign as commands
from outbound_pipeline.domain.lead_list import LeadListError, import_lead_list
from outbound_pipeline.domain.lifecycle import NOT_LAUNCHED, IllegalTransition
from outbound_pipeline.domain.loader import UnknownCampaignError, get_campaign
from outbound_pipeline.domain.metrics import ALL
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.http import api_specs, auth
from outbound_pipeline.http.api_context import ApiError, Surface
from outbound_pipeline.http.api_specs import CampaignFields, DuplicateRequest, LaunchRequest
from outbound_pipeline.store import api_campaigns as store
from outbound_pipeline.store import campaigns as campaign_store
from outbound_pipeline.store import contacts as contact_store
from outbound_pipeline.store.metrics import rollup

MESSAGE_STATUSES = ("pending", "queued", "sent", "delivered", "opened", "read", "replied", "failed", "suppressed")
VOICE_STATUSES = ("pending", "calling", "completed", "failed", "no_answer", "voicemail")
METRIC_FIELDS = ("queued", "sent", "delivered", "failed", "bounced", "opened", "read", "clicked", "replied", "replied_to_cta",
                 "opted_out", "leads_reached", "delivery_rate", "open_rate", "read_rate", "reply_rate", "opt_out_rate", "bounce_rate",
                 "cost_usd")
_bearer = HTTPBearer(auto_error=False, description="An API key from `outbound apikey create NAME`.")


def jsonable(value: Any) -> Any:
    """A cell as JSON: NULL/NaN/NaT as null, timestamps as ISO text, numpy numbers as Python ones."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item"):
        return jsonable(value.item())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): jsonable(v) for k, v in row.items()} for row in frame.to_dict("records")]


def channels_of(spec: CampaignSpec) -> str:
    """A campaign file's channels as one label: `voice`, or its message channels in the order its steps name them."""
    if spec.is_voice:
        return "voice"
    return ", ".join(dict.fromkeys(ch for step in spec.steps for ch in step.channels))


def _voice_store() -> Any:
    """store.calls when voice campaigns are installed, else None."""
    try:
        from outbound_pipeline.store import calls  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        return None
    return calls


class Api:
    """The routes, as methods over one `Surface`."""

    def __init__(self, surface: Surface):
        self.s = surface

    # ----------------------------------------------------------------------------------------- helpers

    def caller(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> auth.Caller:
        token = credentials.credentials if credentials else None
        with self.s.read() as con:
            found = auth.verify_key(con, token)
        if found is None or found.role != "api":
            raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer <key>` (create one with `outbound apikey create NAME`)"
                           if found is None else f"key {found.name!r} is a reviewer key: it signs in to the pages, not the API")
        return found

    def audit(self, caller: auth.Caller, request: Request, campaign_id: str | None, action: str, status: int, detail: str | None) -> None:
        with self.s.write() as con:
            store.audit(con, caller.name, request.method, request.url.path, campaign_id, action, status, detail, self.s.now())

    def change(self, caller: auth.Caller, request: Request, campaign_id: str | None, action: str, work: Any, status: int = 200) -> Any:
        """Run a change and record it (done or refused) with the key's name."""
        try:
            result = work()
        except ApiError as exc:
            self.audit(caller, request, campaign_id, action, exc.status, exc.message)
            raise
        self.audit(caller, request, campaign_id or result.get("id"), action, status, json.dumps(result.get("audit"), default=str))
        result.pop("audit", None)
        return result

    def _spec(self, con: Any, campaign_id: str, status: str | None) -> CampaignSpec | None:
        if status is not None and status not in NOT_LAUNCHED:
            return campaign_store.campaign_spec(con, campaign_id)
        try:
            return get_campaign(campaign_id, self.s.campaigns_dir)
        except (UnknownCampaignError, ValueError, FileNotFoundError):
            return None

    def load(self, campaign_id: str) -> dict[str, Any]:
        """Everything known of a campaign: its status, HTTP fields, spec, problems and contact counts; 404 when unknown."""
        with self.s.read() as con:
            status = campaign_store.current_status(con, campaign_id)
            api = store.api_campaign(con, campaign_id)
            if status is None and api is None:
                raise ApiError(404, f"no campaign {campaign_id!r}")
            spec = self._spec(con, campaign_id, status)
            lists = [campaign_id] if api else (spec.audience.lists if spec else [])
            launched = status is not None and status not in NOT_LAUNCHED
            recipients = contact_store.recipient_count(con, campaign_id) if launched else 0
            in_lists = store.contacts_in_lists(con, lists)
        fields = dict(api["settings"]) if api else {}
        problems = api_specs.build_spec(campaign_id, fields)[2] if api else ([] if spec else ["the campaign file is missing or invalid"])
        channel = api["channel"] if api else (channels_of(spec) if spec else "email")
        return {"id": campaign_id, "status": status or "draft", "api": api, "fields": fields, "spec": spec, "problems": problems,
                "channel": channel, "lists": lists, "contacts": recipients if launched else in_lists, "launched": launched}

    @staticmethod
    def view(c: dict[str, Any]) -> dict[str, Any]:
        """A campaign as the API shows it."""
        f, spec = c["fields"], c["spec"]
        out: dict[str, Any] = {
            "id": c["id"], "name": (c["api"] or {}).get("name") or c["id"], "status": c["status"], "channel": c["channel"],
            "agent_id": f.get("agent_id"), "phone_number_id": f.get("phone_number_id"), "number_pool": f.get("number_pool") or [],
            "max_concurrent": f.get("max_concurrent", 1), "retry_attempts": f.get("retry_attempts", spec.retry_attempts if spec else 0),
            "retry_delay_minutes": f.get("retry_delay_minutes", 60), "scheduled_at": f.get("scheduled_at"),
            "sms_template": f.get("sms_template"), "template": f.get("template"), "live": bool(f.get("live")),
            "approval": spec.approval if spec else f.get("approval"), "steps": [s.name or f"step{i}" for i, s in enumerate(spec.steps, 1)]
            if spec else [], "contacts": c["contacts"], "problems": c["problems"],
            "created_by": (c["api"] or {}).get("created_by"), "created_at": jsonable((c["api"] or {}).get("created_at")),
        }
        return out

    def _write_spec(self, campaign_id: str, fields: dict[str, Any]) -> tuple[CampaignSpec | None, list[str]]:
        text, spec, problems = api_specs.build_spec(campaign_id, fields)
        path = self.s.campaigns_dir / f"{campaign_id}.yaml"
        if spec is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif path.exists():
            path.unlink()  # a draft whose fields no longer make a valid file is not offered to the UI half-made
        return spec, problems

    # ----------------------------------------------------------------------------------------- campaigns

    def create(self, body: CampaignFields, caller: auth.Caller) -> dict[str, Any]:
        fields = body.model_dump(exclude_none=True)
        if not fields.get("name"):
            raise ApiError(422, "name is required")
        fields.setdefault("channel", "voice")
        now = self.s.now()
        with self.s.write() as con:
            taken = store.campaign_ids_in_use(con) | {p.stem for p in self.s.campaigns_dir.glob("*.y*ml")}
            campaign_id = api_specs.campaign_id_for(fields["name"], taken)
            store.record_campaign(con, campaign_id, fields["name"], fields["channel"], fields, caller.name, now)
        spec, problems = self._write_spec(campaign_id, fields)
        if spec is not None:
            with self.s.lifecycle():
                commands.create(campaign_id, self.s.db_path, self.s.instance(), now, str(self.s.campaigns_dir), actor=f"api:{caller.name}")
        return {**self.view(self.load(campaign_id)), "audit": {"created": campaign_id, "problems": problems}}

    def update(self, campaign_id: str, body: CampaignFields, caller: auth.Caller) -> dict[str, Any]:
        c = self.load(campaign_id)
        if c["api"] is None:
            raise ApiError(409, f"campaign {campaign_id!r} was not created through the API: edit its file in the campaigns folder")
        if c["status"] != "draft":
            raise ApiError(409, f"campaign {campaign_id!r} is {c['status']}: only a draft can be changed (duplicate it to run a changed copy)")
        changes = body.model_dump(exclude_unset=True)
        fields = {k: v for k, v in {**c["fields"], **changes}.items() if v is not None}
        now = self.s.now()
        with self.s.lifecycle():
            spec, _ = self._write_spec(campaign_id, fields)
            with self.s.write() as con:
                store.update_settings(con, campaign_id, fields.get("name", campaign_id), fields.get("channel", "voice"), fields, now)
                exists = campaign_store.current_status(con, campaign_id) is not None
            if spec is not None and not exists:
                commands.create(campaign_id, self.s.db_path, self.s.instance(), now, str(self.s.campaigns_dir), actor=f"api:{caller.name}")
        return {**self.view(self.load(campaign_id)), "audit": {"changed": sorted(changes)}}

    def listing(self) -> dict[str, Any]:
        with self.s.read() as con:
            overview = store.campaign_overview(con)
            pending = store.api_drafts(con)
        out = []
        for row in overview.to_dict("records"):
            spec = CampaignSpec.model_validate_json(row["spec"])
            fields = json.loads(row["api_settings"]) if isinstance(row["api_settings"], str) else {}
            out.append({"id": row["campaign_id"], "name": row["api_name"] or row["campaign_id"], "status": row["status"],
                        "channel": row["api_channel"] or channels_of(spec), "agent_id": fields.get("agent_id"),
                        "phone_number_id": fields.get("phone_number_id"), "recipients": int(row["recipients"]),
                        "sent": int(row["sent"]), "engaged": int(row["engaged"]), "replied": int(row["replied"])})
        for row in pending.to_dict("records"):
            fields = json.loads(row["settings"])
            out.append({"id": row["campaign_id"], "name": row["name"], "status": "draft", "channel": row["channel"],
                        "agent_id": fields.get("agent_id"), "phone_number_id": fields.get("phone_number_id"), "recipients": 0,
                        "sent": 0, "engaged": 0, "replied": 0})
        return {"campaigns": out}

    # ----------------------------------------------------------------------------------------- contacts

    async def upload(self, campaign_id: str, request: Request, caller: auth.Caller) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > api_specs.MAX_CSV_BYTES + 64 * 1024:
            raise ApiError(413, f"the upload is larger than {api_specs.MAX_CSV_BYTES // (1024 * 1024)} MB")
        try:
            form = await request.form(max_files=1, max_fields=10)
        except Exception as exc:  # not multipart, or a broken body
            raise ApiError(400, f"send the CSV as multipart/form-data in the field `file` ({exc})") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "send the CSV as multipart/form-data in the field `file`")
        filename = Path(upload.filename or "").name
        if not filename.lower().endswith(".csv"):
            raise ApiError(400, f"only .csv files are accepted, got {filename or 'a file without a name'!r}")
        data = await upload.read(api_specs.MAX_CSV_BYTES + 1)
        if len(data) > api_specs.MAX_CSV_BYTES:
            raise ApiError(413, f"{filename} is larger than {api_specs.MAX_CSV_BYTES // (1024 * 1024)} MB")
        if not data.strip():
            raise ApiError(400, f"{filename} is empty")
        return self.import_csv(campaign_id, filename, data)

    def import_csv(self, campaign_id: str, filename: str, data: bytes) -> dict[str, Any]:
        c = self.load(campaign_id)
        if c["status"] == "running":
            raise ApiError(409, f"campaign {campaign_id!r} is running: pause or stop it before uploading contacts")
        if not c["lists"]:
            raise ApiError(409, f"campaign {campaign_id!r} reads its audience from a lead file, not a contact list")
        list_name = c["lists"][0]
        now = self.s.now()
        region = c["spec"].audience.default_region if c["spec"] else c["fields"].get("default_region", "US")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename)
        folder = Path(self.s.db_path).parent / "uploads" / campaign_id
        folder.mkdir(parents=True, exist_ok=True)
        # each upload is its own source file, so a contact already in the list from an earlier upload is skipped, not re-imported
        path = folder / f"{now:%Y%m%dT%H%M%S}-{secrets.token_hex(4)}-{safe}"
        path.write_bytes(data)
        try:
            result = import_lead_list(path, region, imported_at=now)
        except LeadListError as exc:
            raise ApiError(400, f"{filename}: {exc} (nothing was imported)") from None
        with self.s.write() as con:
            running = contact_store.running_campaigns_using(con, list_name)
            if running:
                raise ApiError(409, f"list {list_name!r} is used by running campaign(s) {', '.join(running)}: pause them first")
            done = contact_store.import_into_list(con, list_name, result, now)
            total = store.contacts_in_lists(con, [list_name])
        summary = done.result.summary()
        rejects = done.result.rejects
        reported = rejects[rejects["line_number"] > 1] if not rejects.empty else rejects
        return {"campaign_id": campaign_id, "file": filename, **summary, "new_contacts": done.new_contacts, "contacts_total": total,
                "warnings": done.result.warnings,
                "lines": records(reported[["line_number", "kind", "reason"]].head(100)) if not reported.empty else [],
                "audit": {"file": filename, **summary}}

    def contacts(self, campaign_id: str, page: int, limit: int, status: str | None, search: str | None) -> dict[str, Any]:
        c = self.load(campaign_id)
        voice = _voice_store() if c["channel"] == "voice" else None
        known = VOICE_STATUSES if c["channel"] == "voice" else MESSAGE_STATUSES
        if status is not None and status not in known:
            raise ApiError(400, f"status {status!r} is not one of {', '.join(known)}")
        with self.s.read() as con:
            if voice is not None and c["launched"]:
                found = voice.call_contacts(con, campaign_id, status, page, limit)
                rows = records(found) if isinstance(found, pd.DataFrame) else list(found)
                counts = voice.call_stats(con, campaign_id).get("contacts", {})
                total = counts.get(status or "total", len(rows))
                return {"campaign_id": campaign_id, "page": page, "limit": limit, "total": total, "contacts": rows}
            if c["launched"]:
                frame, total = store.message_contacts(con, campaign_id, status, search, page, limit)
            elif status in (None, "pending") and c["lists"]:
                frame, total = store.list_contacts_page(con, c["lists"][0], page, limit)
            else:
                frame, total = pd.DataFrame(), 0
        rows = records(frame)
        for row in rows:
            row["variables"] = json.loads(row["variables"]) if row.get("variables") else {}
        return {"campaign_id": campaign_id, "page": page, "limit": limit, "total": total, "contacts": rows}

    # ----------------------------------------------------------------------------------------- lifecycle

    def launch(self, campaign_id: str, body: LaunchRequest, caller: auth.Caller) -> dict[str, Any]:
        with self.s.lifecycle():
            c = self.load(campaign_id)
            if c["status"] not in NOT_LAUNCHED:
                raise ApiError(409, f"campaign {campaign_id!r} is {c['status']}: only a draft or scheduled campaign can be launched")
            fields = dict(c["fields"])
            if c["api"] is not None and body.max_concurrent is not None:
                fields["max_concurrent"] = body.max_concurrent
                self._write_spec(campaign_id, fields)
                with self.s.write() as con:
                    store.update_settings(con, campaign_id, fields["name"], fields["channel"], fields, self.s.now())
                c = self.load(campaign_id)
            scheduled = body.scheduled_at or fields.get("scheduled_at")
            if c["api"] is None:
                fields.setdefault("channel", c["channel"])
                fields.setdefault("phone_number_id", "configured")  # a campaign file names its senders itself
            failures = api_specs.launch_problems(fields, c["problems"], c["contacts"], scheduled)
            if failures:
                raise ApiError(422, "launch refused: " + "; ".join(failures), failures=failures)
            now = self.s.now()
            at = scheduled if scheduled and api_specs.scheduled_utc(scheduled) > now else None
            try:
                message = commands.launch(campaign_id, self.s.db_path, self.s.instance(), now, at=at,
                                          campaigns_dir=str(self.s.campaigns_dir), actor=f"api:{caller.name}")
            except IllegalTransition as exc:
                raise ApiError(409, str(exc)) from None
            except ValueError as exc:
                raise ApiError(422, str(exc), failures=[str(exc)]) from None
        return {**self.view(self.load(campaign_id)), "message": message, "audit": {"message": message}}

    def move(self, campaign_id: str, target: str, caller: auth.Caller, via: str = "api") -> dict[str, Any]:
        with self.s.lifecycle():
            self.load(campaign_id)
            try:
                message = commands.set_status(campaign_id, target, self.s.db_path, self.s.instance(), self.s.now(),
                                              actor=f"{via}:{caller.name}")
            except IllegalTransition as exc:
                raise ApiError(409, str(exc)) from None
        return {**self.view(self.load(campaign_id)), "message": message, "audit": {"message": message}}

    def duplicate(self, campaign_id: str, body: DuplicateRequest, caller: auth.Caller) -> dict[str, Any]:
        c = self.load(campaign_id)
        name = body.name or f"{(c['api'] or {}).get('name') or campaign_id} copy"
        if c["api"] is not None:
            fields = {k: v for k, v in c["fields"].items() if k not in ("name", "scheduled_at")}
            copy = self.create(CampaignFields(name=name, **fields), caller)
            copy.pop("audit", None)
            return {**copy, "audit": {"duplicated_from": campaign_id, "id": copy["id"]}}
        with self.s.read() as con:
            taken = store.campaign_ids_in_use(con) | {p.stem for p in self.s.campaigns_dir.glob("*.y*ml")}
        new_id = api_specs.campaign_id_for(name, taken)
        with self.s.lifecycle():
            try:
                commands.duplicate(campaign_id, new_id, self.s.db_path, self.s.instance(), self.s.now(), str(self.s.campaigns_dir))
            except ValueError as exc:
                raise ApiError(422, str(exc)) from None
        return {**self.view(self.load(new_id)), "audit": {"duplicated_from": campaign_id, "id": new_id}}

    # ----------------------------------------------------------------------------------------- stats

    def stats(self, campaign_id: str) -> dict[str, Any]:
        c = self.load(campaign_id)
        voice = _voice_store() if c["channel"] == "voice" else None
        out: dict[str, Any] = {"campaign_id": campaign_id, "campaign_status": c["status"], "channel": c["channel"]}
        with self.s.read() as con:
            if voice is not None and c["launched"]:
                found = dict(voice.call_stats(con, campaign_id))
                for key in ("campaign_id", "campaign_status"):
                    found.pop(key, None)
                return {**out, **found}
            counts = store.contact_status_counts(con, campaign_id) if c["launched"] else {"pending": c["contacts"]}
            metrics = self.live_metrics(con, campaign_id) if c["launched"] else None
        total = sum(counts.values())
        waiting = counts.get("pending", 0) + counts.get("queued", 0)
        out["contacts"] = {"total": total, **{s: counts.get(s, 0) for s in MESSAGE_STATUSES}}
        out["progress"] = round(100 * (total - waiting) / total) if total else 0
        out["message_metrics"] = metrics
        return out

    def live_metrics(self, con: Any, campaign_id: str) -> dict[str, Any] | None:
        """The whole-campaign row of the rollup behind `campaign_metrics`, counted as of now (same SQL, same definitions)."""
        frame = rollup(con, self.s.now())
        row = frame[(frame["campaign_id"] == campaign_id) & (frame["touch"] == 0) & (frame["channel"] == ALL) & (frame["variant"] == ALL)]
        if row.empty:
            return None
        first = row.iloc[0]
        return {k: jsonable(first[k]) for k in METRIC_FIELDS if k in row.columns} | {"as_of": jsonable(self.s.now())}


def build_api(surface: Surface) -> APIRouter:
    """The /api routes over `surface`."""
    api = Api(surface)
    router = APIRouter(prefix="/api", tags=["campaigns"])

    def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> auth.Caller:
        return api.caller(request, credentials)

    Who = Annotated[auth.Caller, Depends(caller)]

    @router.post("/campaigns", status_code=201, summary="Create a campaign (as a draft)")
    def create_campaign(body: CampaignFields, request: Request, who: Who) -> dict[str, Any]:
        return api.change(who, request, None, "create", lambda: api.create(body, who), status=201)

    @router.get("/campaigns", summary="Every campaign with its status, channel and counts")
    def list_campaigns(who: Who) -> dict[str, Any]:
        return api.listing()

    @router.get("/campaigns/download-template", summary="A CSV template with example contacts", response_class=Response,
                responses={200: {"content": {"text/csv": {}}}})
    def download_template(who: Who) -> Response:
        return Response(api_specs.TEMPLATE_CSV, media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="contacts_template.csv"'})

    @router.get("/campaigns/{campaign_id}", summary="One campaign")
    def get_campaign_(campaign_id: str, who: Who) -> dict[str, Any]:
        return api.view(api.load(campaign_id))

    @router.patch("/campaigns/{campaign_id}", summary="Change a draft campaign")
    def patch_campaign(campaign_id: str, body: CampaignFields, request: Request, who: Who) -> dict[str, Any]:
        return api.change(who, request, campaign_id, "update", lambda: api.update(campaign_id, body, who))

    @router.post("/campaigns/{campaign_id}/upload-csv", summary="Upload contacts (multipart field `file`, .csv, at most 5 MB)",
                 openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                     "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}})
    async def upload_csv(campaign_id: str, request: Request, who: Who) -> dict[str, Any]:
        try:
            result = await api.upload(campaign_id, request, who)
        except ApiError as exc:
            api.audit(who, request, campaign_id, "upload", exc.status, exc.message)
            raise
        api.audit(who, request, campaign_id, "upload", 200, json.dumps(result.pop("audit")))
        return result

    @router.post("/campaigns/{campaign_id}/launch", summary="Verify and launch now, or at scheduled_at")
    def launch(campaign_id: str, request: Request, who: Who, body: LaunchRequest | None = None) -> dict[str, Any]:
        return api.change(who, request, campaign_id, "launch", lambda: api.launch(campaign_id, body or LaunchRequest(), who))

    def mover(action: str, target: str) -> Any:
        def move(campaign_id: str, request: Request, who: Who) -> dict[str, Any]:
            return api.change(who, request, campaign_id, action, lambda: api.move(campaign_id, target, who))
        return move

    for action, target in (("pause", "paused"), ("resume", "running"), ("stop", "stopped")):
        router.add_api_route(f"/campaigns/{{campaign_id}}/{action}", mover(action, target), methods=["POST"],
                             summary=f"{action.capitalize()} the campaign", name=f"{action}_campaign")

    @router.post("/campaigns/{campaign_id}/duplicate", status_code=201, summary="Copy a campaign as a new draft")
    def duplicate(campaign_id: str, request: Request, who: Who, body: DuplicateRequest | None = None) -> dict[str, Any]:
        return api.change(who, request, campaign_id, "duplicate", lambda: api.duplicate(campaign_id, body or DuplicateRequest(), who),
                          status=201)

    @router.get("/campaigns/{campaign_id}/stats", summary="Contacts by status, progress, call or message metrics")
    def stats(campaign_id: str, who: Who) -> dict[str, Any]:
        return api.stats(campaign_id)

    @router.get("/campaigns/{campaign_id}/contacts", summary="Contacts with status, attempts, duration and last error, paginated")
    def contacts(campaign_id: str, who: Who, page: int = Query(1, ge=1), limit: int = Query(50, ge=1, le=500), status: str | None = None,
                 search: str | None = Query(None, max_length=200)) -> dict[str, Any]:
        return api.contacts(campaign_id, page, limit, status, search)

    return router


def install_errors(app: FastAPI) -> None:
    """Errors as JSON `{"error": ...}` with the status that says what went wrong."""
    from starlette.exceptions import HTTPException

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.status == 503:
            headers["Retry-After"] = str(exc.extra.get("retry_after_s", 30))
        return JSONResponse({"error": exc.message, **exc.extra}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "message": str(e.get("msg", "")).removeprefix("Value error, ")}
                    for e in errors]
        text = "; ".join(f"{p['field']}: {p['message']}" if p["field"] else p["message"] for p in problems)
        return JSONResponse({"error": f"invalid request: {text}", "problems": problems}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))
