"""TavilyResearch against a local server speaking Tavily's `/search` wire format."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.ids import stable_id
from outbound_pipeline.providers.base import LeadProfile, ProviderError, ResearchProvider
from outbound_pipeline.providers.concurrency import ProviderLimit, map_concurrently
from outbound_pipeline.providers.research_tavily import SNIPPET_TEXT_CHARS, TavilyResearch, build_query

KEY = "tvly-dev-test-key-123"
GOAL = "Book a demo of our payment fraud monitoring for fintech risk teams"

LEAD = LeadProfile(
    lead_id="lead_ana",
    first_name="Ana",
    last_name="García",
    company="Pagoya",
    role="Head of Risk",
    email="ana@pagoya.example",
    phone="+34600000000",
)


def result(n: int, score: float, content: str | None = None, url: str | None = None) -> dict:
    return {
        "title": f"Pagoya news {n}",
        "url": url or f"https://news.example/pagoya-{n}",
        "content": content if content is not None else f"Pagoya announced initiative number {n} led by Ana García.",
        "score": score,
        "raw_content": None,
        "published_date": f"2026-0{n % 9 + 1}-15" if n % 2 else None,
    }


def answer(results: list[dict], query: str = "q") -> dict:
    return {
        "query": query,
        "follow_up_questions": None,
        "answer": None,
        "images": [],
        "results": results,
        "response_time": 1.07,
        "request_id": "123e4567-e89b-12d3-a456-426614174111",
    }


class SleepRecorder:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def make(httpserver: HTTPServer, sleeps: SleepRecorder, **kwargs) -> TavilyResearch:
    return TavilyResearch(KEY, base_url=httpserver.url_for(""), sleep=sleeps, base_delay=0.05, **kwargs)


def test_build_query_is_deterministic_and_bounded() -> None:
    query = build_query(LEAD, GOAL)
    assert query == build_query(LEAD, GOAL)
    for part in ("Ana García", "Head of Risk", "Pagoya", "payment fraud monitoring"):
        assert part in query
    long = build_query(LEAD, "fraud " * 200)
    assert len(long) <= 400
    assert long.startswith("Ana García, Head of Risk at Pagoya")
    assert build_query(LEAD, "  Book   a\ndemo ") == build_query(LEAD, "Book a demo")


def test_research_sends_real_request_and_ranks_snippets(httpserver: HTTPServer, sleeps: SleepRecorder) -> None:
    results = [
        result(1, 0.41),
        result(2, 0.93, content="x" * 5000),
        result(3, 0.77),
        result(4, 0.88, content="   "),  # nothing to quote
        result(5, 0.52),
        result(6, 0.65),
        result(7, 0.60, url="https://news.example/pagoya-3"),  # same page as result 3
    ]
    httpserver.expect_request("/search", method="POST", headers={"Authorization": f"Bearer {KEY}"}).respond_with_json(answer(results))
    provider = make(httpserver, sleeps)
    assert isinstance(provider, ResearchProvider)

    out = provider.research(LEAD, GOAL)

    assert len(httpserver.log) == 1
    sent = httpserver.log[0][0].get_json()
    assert sent["query"] == build_query(LEAD, GOAL)
    assert sent["max_results"] == 5
    assert sent["search_depth"] == "basic"
    assert out.query == sent["query"]
    assert out.provider == "tavily"
    assert out.lead_id == "lead_ana"
    assert [s.source_url.rsplit("-", 1)[1] for s in out.snippets] == ["2", "3", "6", "5", "1"]
    assert [s.score for s in out.snippets] == [0.93, 0.77, 0.65, 0.52, 0.41]
    top = out.snippets[0]
    assert top.snippet_id == stable_id("snp", "lead_ana", "https://news.example/pagoya-2")
    assert len(top.text) <= SNIPPET_TEXT_CHARS and top.text.endswith("…")
    assert out.snippets[1].text == "Pagoya announced initiative number 3 led by Ana García."
    assert out.snippets[1].published_date == "2026-04-15"
    assert out.snippets[0].published_date is None
    assert out.cost_usd == pytest.approx(0.008)


def test_fewer_than_three_results_are_returned_as_they_are(httpserver: HTTPServer, sleeps: SleepRecorder) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_json(answer([result(1, 0.5), result(2, 0.7)]))
    out = make(httpserver, sleeps).research(LEAD, GOAL)
    assert [s.title for s in out.snippets] == ["Pagoya news 2", "Pagoya news 1"]


def test_cache_hit_costs_nothing_and_sends_nothing(httpserver: HTTPServer, sleeps: SleepRecorder, tmp_path: Path) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_json(answer([result(1, 0.5), result(2, 0.7), result(3, 0.6)]))
    cache = tmp_path / "tavily"

    first = make(httpserver, sleeps, cache_dir=cache).research(LEAD, GOAL)
    second = make(httpserver, sleeps, cache_dir=cache).research(LEAD, GOAL)  # a fresh instance: the cache is on disk

    assert len(httpserver.log) == 1
    assert first.cost_usd == pytest.approx(0.008)
    assert second.cost_usd == 0.0
    assert second.snippets == first.snippets
    files = list(cache.glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["lead_id"] == "lead_ana" and stored["query"] == first.query
    assert KEY not in files[0].read_text()

    other_goal = make(httpserver, sleeps, cache_dir=cache).research(LEAD, "Hire engineers")
    assert len(httpserver.log) == 2  # another query is another cache entry
    assert other_goal.cost_usd == pytest.approx(0.008)


def test_advanced_depth_costs_two_credits(httpserver: HTTPServer, sleeps: SleepRecorder) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_json(answer([result(1, 0.5)]))
    out = make(httpserver, sleeps, search_depth="advanced", max_results=3, cost_per_credit_usd=0.01).research(LEAD, GOAL)
    sent = httpserver.log[0][0].get_json()
    assert (sent["search_depth"], sent["max_results"]) == ("advanced", 3)
    assert out.cost_usd == pytest.approx(0.02)


@pytest.mark.parametrize("status", [429, 502])
def test_transient_errors_are_retried_with_backoff(httpserver: HTTPServer, sleeps: SleepRecorder, status: int) -> None:
    error = {"detail": {"error": "Your request has been blocked due to excessive requests."}}
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(error, status=status)
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(error, status=status)
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(answer([result(1, 0.5), result(2, 0.4), result(3, 0.3)]))

    out = make(httpserver, sleeps).research(LEAD, GOAL)

    assert len(httpserver.log) == 3
    assert [r.status_code for _, r in httpserver.log] == [status, status, 200]
    assert len(out.snippets) == 3
    assert len(sleeps.calls) == 2
    assert 0 <= sleeps.calls[0] <= 0.05 and 0 <= sleeps.calls[1] <= 0.1  # full jitter under a doubling cap


def test_retries_give_up_with_provider_error(httpserver: HTTPServer, sleeps: SleepRecorder, tmp_path: Path) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_json({"detail": {"error": "Rate limit exceeded"}}, status=429)
    provider = make(httpserver, sleeps, cache_dir=tmp_path, attempts=3)
    with pytest.raises(ProviderError) as info:
        provider.research(LEAD, GOAL)
    assert (info.value.code, info.value.status, info.value.message) == ("429", 429, "Rate limit exceeded")
    assert len(httpserver.log) == 3
    assert list(tmp_path.iterdir()) == []  # a failure is not cached


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Unauthorized: missing or invalid API key."),
        (400, "Query is too long. Max query length is 400 characters."),
        (432, "This request exceeds your plan's set usage limit."),
        (404, "Not Found"),
    ],
)
def test_client_errors_surface_code_and_message_without_retry(
    httpserver: HTTPServer, sleeps: SleepRecorder, status: int, message: str
) -> None:
    httpserver.expect_request("/search", method="POST").respond_with_json({"detail": {"error": message}}, status=status)
    with pytest.raises(ProviderError) as info:
        make(httpserver, sleeps).research(LEAD, GOAL)
    err = info.value
    assert (err.provider, err.code, err.status, err.message) == ("tavily", str(status), status, message)
    assert len(httpserver.log) == 1
    assert sleeps.calls == []
    assert KEY not in str(err)


def test_key_is_required_and_never_shown(httpserver: HTTPServer) -> None:
    with pytest.raises(ValueError):
        TavilyResearch("")
    provider = TavilyResearch(KEY, base_url=httpserver.url_for(""))
    assert KEY not in repr(provider)


def test_retry_after_header_is_honoured_and_capped(httpserver: HTTPServer, sleeps: SleepRecorder) -> None:
    limited = {"detail": {"error": "Rate limit exceeded"}}
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(limited, status=429, headers={"Retry-After": "2"})
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(limited, status=429, headers={"Retry-After": "3600"})
    httpserver.expect_ordered_request("/search", method="POST").respond_with_json(answer([result(1, 0.5)]))
    out = make(httpserver, sleeps, max_retry_after_s=30).research(LEAD, GOAL)
    assert len(out.snippets) == 1
    assert sleeps.calls == [2.0, 30.0]


def test_unreachable_server_is_retried_then_reported(sleeps: SleepRecorder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = TavilyResearch(KEY, base_url=f"http://127.0.0.1:{port}", sleep=sleeps, attempts=2, timeout_s=1)
    with pytest.raises(ProviderError) as info:
        provider.research(LEAD, GOAL)
    assert info.value.status is None and info.value.code == "ConnectionError"
    assert len(sleeps.calls) == 1


def test_concurrent_leads_keep_their_own_results(httpserver: HTTPServer, sleeps: SleepRecorder, tmp_path: Path) -> None:
    leads = [LeadProfile(lead_id=f"lead_{i}", first_name=f"Name{i}", last_name="X", company=f"Co{i}", role="CTO") for i in range(8)]

    throttled: set[str] = set()
    lock = threading.Lock()

    def handler(request: Request) -> Response:
        query = request.get_json()["query"]
        i = query.removeprefix("Name").split()[0]
        with lock:
            throttle = i in {"3", "5"} and i not in throttled  # these leads are throttled once
            throttled.add(i)
        if throttle:
            return Response(json.dumps({"detail": {"error": "slow down"}}), status=429, content_type="application/json")
        return Response(json.dumps(answer([result(1, 0.9, url=f"https://co{i}.example/news")], query)), content_type="application/json")

    httpserver.expect_request("/search", method="POST").respond_with_handler(handler)
    provider = make(httpserver, sleeps, cache_dir=tmp_path)
    out = map_concurrently(lambda lead: provider.research(lead, GOAL), leads, max_workers=4)
    assert [r.snippets[0].source_url for r in out] == [f"https://co{i}.example/news" for i in range(8)]
    assert len(httpserver.log) == 10
    assert len(list(tmp_path.glob("*.json"))) == 8


def test_retries_after_a_429_take_rate_slots_of_their_own(httpserver: HTTPServer, tmp_path: Path) -> None:
    """Leads throttled together retry one rate slot apart: retried at once, they would meet the limit again together."""
    leads = [LeadProfile(lead_id=f"lead_{i}", first_name=f"Name{i}", last_name="X", company=f"Co{i}", role="CTO") for i in range(4)]
    arrivals: dict[str, list[float]] = {}
    lock = threading.Lock()
    all_in = threading.Barrier(4, timeout=5)  # the four first attempts are answered 429 together

    def handler(request: Request) -> Response:
        query = request.get_json()["query"]
        with lock:
            seen = arrivals.setdefault(query, [])
            seen.append(time.monotonic())
            first = len(seen) == 1
        if first:
            all_in.wait()
            return Response(json.dumps({"detail": {"error": "slow down"}}), status=429, content_type="application/json",
                            headers={"Retry-After": "1"})
        return Response(json.dumps(answer([result(1, 0.9)], query)), content_type="application/json")

    httpserver.expect_request("/search", method="POST").respond_with_handler(handler)
    limit = ProviderLimit(per_second=10.0)
    provider = TavilyResearch(KEY, base_url=httpserver.url_for(""), cache_dir=tmp_path, base_delay=0.0, limit=limit)
    map_concurrently(lambda lead: provider.research(lead, GOAL), leads, max_workers=4, limit=limit)
    retried = sorted(times[1] for times in arrivals.values())
    assert len(retried) == 4
    assert min(b - a for a, b in zip(retried, retried[1:], strict=False)) >= 0.08  # 10 a second: a slot every 0.1 s
