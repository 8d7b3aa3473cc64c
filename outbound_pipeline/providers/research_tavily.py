"""Lead research through Tavily search, cached on disk so a re-run never pays twice."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from tavily import TavilyClient
from tavily.errors import BadRequestError, ForbiddenError, InvalidAPIKeyError, UsageLimitExceededError
from tavily.errors import TimeoutError as TavilyTimeoutError

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import LeadProfile, ProviderError, ResearchResult, Snippet
from outbound_pipeline.providers.concurrency import ProviderLimit
from outbound_pipeline.providers.retry import RETRYABLE_STATUSES, with_retries

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 400  # Tavily rejects longer queries
MAX_SNIPPETS = 5
SNIPPET_TEXT_CHARS = 600
CREDITS_PER_SEARCH = {"advanced": 2}  # every other depth costs 1 credit

_STATUS_BY_ERROR: dict[type[Exception], int] = {
    UsageLimitExceededError: 429,
    InvalidAPIKeyError: 401,
    BadRequestError: 400,
    ForbiddenError: 403,
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()


def build_query(lead: LeadProfile, goal: str) -> str:
    """The search query for one lead: who they are, where they work, and what the campaign is about.

    Deterministic, so the on-disk cache keyed by the query stays valid between runs.
    """
    who = ", ".join(p for p in (_squash(lead.full_name), _squash(lead.role)) if p)
    company = _squash(lead.company)
    head = f"{who} at {company}" if who and company else who or company
    query = f"{head}: recent news, initiatives and public statements"
    goal = _squash(goal)
    if goal:
        room = MAX_QUERY_CHARS - len(query) - len(" related to ")
        if room > 20:
            query = f"{query} related to {_trim(goal, room, ellipsis=False)}"
    return _trim(query, MAX_QUERY_CHARS, ellipsis=False)


def _trim(text: str, limit: int, ellipsis: bool = True) -> str:
    """Cut at a word boundary so a snippet never ends mid-word."""
    text = _squash(text)
    if len(text) <= limit:
        return text
    budget = limit - 1 if ellipsis else limit
    cut = text[:budget]
    if " " in cut[budget // 2 :]:
        cut = cut[: cut.rindex(" ")]
    cut = cut.rstrip(" ,;:-")
    return cut + "…" if ellipsis else cut


def _error_detail(response: requests.Response | None) -> str:
    if response is None:
        return ""
    try:
        body = response.json()
    except ValueError:
        return _squash(response.text)[:300]
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return str(detail.get("error") or "")
    return str(detail or "")


def _status_of(exc: Exception, response: requests.Response | None) -> int | None:
    """The HTTP status behind an SDK error; the SDK folds 403, 432 and 433 into one class, the response does not."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return exc.response.status_code
    if response is not None and response.status_code >= 400:
        return response.status_code
    for cls, status in _STATUS_BY_ERROR.items():
        if isinstance(exc, cls):
            return status
    return None


def _retry_after_s(response: requests.Response | None) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TavilyResearch:
    """ResearchProvider backed by Tavily's `/search` endpoint.

    Each lead gets one query; the raw answer is cached as JSON under `cache_dir`, keyed by
    lead, query, depth and result count, so asking again is free and sends nothing.
    """

    name = "tavily"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        cache_dir: str | Path | None = None,
        search_depth: str = "basic",
        max_results: int = 5,
        cost_per_credit_usd: float = 0.008,
        *,
        timeout_s: float = 60,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_retry_after_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        limit: ProviderLimit | None = None,
    ):
        """`limit`: the process-wide Tavily limit; a 429's Retry-After holds every caller on it back."""
        if not api_key:
            # Without a key the SDK silently switches to Tavily's keyless mode.
            raise ValueError("TavilyResearch needs an API key")
        self._api_key = api_key
        self._last = threading.local()
        session = requests.Session()
        session.hooks["response"].append(self._remember)
        self._client = TavilyClient(api_key=api_key, api_base_url=base_url.rstrip("/") if base_url else None, session=session)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.search_depth = search_depth
        self.max_results = max_results
        self.cost_per_credit_usd = cost_per_credit_usd
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._limit = limit

    def __repr__(self) -> str:
        return f"TavilyResearch(base_url={self._client.base_url!r}, search_depth={self.search_depth!r}, max_results={self.max_results})"

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Keep this thread's last HTTP answer: the SDK's exceptions drop its status and Retry-After."""
        self._last.response = response
        return response

    def _last_response(self) -> requests.Response | None:
        return getattr(self._last, "response", None)

    @property
    def cost_per_search_usd(self) -> float:
        return CREDITS_PER_SEARCH.get(self.search_depth, 1) * self.cost_per_credit_usd

    def research(self, lead: LeadProfile, goal: str) -> ResearchResult:
        query = build_query(lead, goal)
        cache_path = self._cache_path(lead.lead_id, query)
        answer = self._read_cache(cache_path)
        cost = 0.0
        if answer is None:
            answer = self._search(query)
            cost = self.cost_per_search_usd
            self._write_cache(cache_path, lead.lead_id, query, answer)
        else:
            log.debug("tavily cache hit for lead %s", lead.lead_id)
        return ResearchResult(
            lead_id=lead.lead_id,
            query=query,
            snippets=self._snippets(lead, answer),
            provider=self.name,
            cost_usd=cost,
        )

    def _search(self, query: str) -> dict[str, Any]:
        tries = 0

        def call() -> dict[str, Any]:
            nonlocal tries
            tries += 1
            if tries > 1 and self._limit is not None:  # a retry takes its own rate slot: retries after one 429 never go out together
                self._limit.wait()
            self._last.response = None
            return self._client.search(
                query=query,
                search_depth=self.search_depth,
                max_results=self.max_results,
                timeout=self.timeout_s,
            )

        def is_retryable(exc: Exception) -> bool:
            """Rate limits, server errors and dropped connections are transient; any other refusal is not."""
            if isinstance(exc, TavilyTimeoutError | requests.ConnectionError | requests.Timeout):
                return True
            status = _status_of(exc, self._last_response())
            return status is not None and (status in RETRYABLE_STATUSES or status >= 500)

        def retry_after(exc: Exception) -> float | None:
            hinted = _retry_after_s(self._last_response())
            if hinted is None:
                return None
            wait = min(hinted, self.max_retry_after_s)
            if self._limit is not None:
                self._limit.hold_off(wait)
            return wait

        try:
            return with_retries(call, is_retryable, retry_after, attempts=self.attempts, base_delay=self.base_delay, sleep=self._sleep)
        except Exception as exc:
            raise self._provider_error(exc) from None

    def _provider_error(self, exc: Exception) -> ProviderError:
        response = exc.response if isinstance(exc, requests.HTTPError) else self._last_response()
        status = _status_of(exc, response)
        message = str(exc) if not isinstance(exc, requests.HTTPError) else ""
        if not message and response is not None:
            message = _error_detail(response) or response.reason or ""
        message = message or type(exc).__name__
        code = str(status) if status is not None else type(exc).__name__
        return ProviderError(self.name, code, message.replace(self._api_key, "***"), status=status)

    def _snippets(self, lead: LeadProfile, answer: dict[str, Any]) -> list[Snippet]:
        """Top results by score, one per URL, with enough text to quote but not a whole page."""
        results = [r for r in answer.get("results") or [] if isinstance(r, dict) and r.get("url") and _squash(r.get("content") or "")]
        results.sort(key=lambda r: float(r.get("score") or 0.0), reverse=True)
        seen: set[str] = set()
        snippets: list[Snippet] = []
        for r in results:
            url = str(r["url"]).strip()
            if url in seen:
                continue
            seen.add(url)
            snippets.append(
                Snippet(
                    snippet_id=stable_id("snp", lead.lead_id, url),
                    source_url=url,
                    title=_trim(r.get("title") or url, 200),
                    text=_trim(r["content"], SNIPPET_TEXT_CHARS),
                    published_date=r.get("published_date") or None,
                    score=float(r["score"]) if r.get("score") is not None else None,
                )
            )
            if len(snippets) == min(MAX_SNIPPETS, self.max_results):
                break
        return snippets

    def _cache_path(self, lead_id: str, query: str) -> Path | None:
        if self.cache_dir is None:
            return None
        key = stable_id("tav", lead_id, query, self.search_depth, self.max_results)
        return self.cache_dir / f"{key}.json"

    def _read_cache(self, path: Path | None) -> dict[str, Any] | None:
        if path is None or not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("ignoring unreadable tavily cache file %s", path)
            return None
        answer = entry.get("response") if isinstance(entry, dict) else None
        return answer if isinstance(answer, dict) else None

    def _write_cache(self, path: Path | None, lead_id: str, query: str, answer: dict[str, Any]) -> None:
        """Write via a temporary file and rename, so a concurrent reader never sees half a file."""
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "lead_id": lead_id,
            "query": query,
            "search_depth": self.search_depth,
            "max_results": self.max_results,
            "response": answer,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
