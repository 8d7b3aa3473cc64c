"""OpenAIComposer against a local server speaking the chat-completions wire format."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from outbound_pipeline.providers.base import Composer, ComposeRequest, LeadProfile, ProviderError, Snippet, StepBrief
from outbound_pipeline.providers.compose_openai import OpenAIComposer, check_draft, find_urls, retry_after_s
from outbound_pipeline.providers.concurrency import ProviderLimit, map_concurrently

KEY = "sk-test-abcdef0123456789"
VOICE = "We write like a friendly engineer: plain words, no hype, one question per message. Sign off as Marta from Ledgerly."
PATH = "/v1/chat/completions"

SNIPPETS = [
    Snippet(
        "snp_aaa",
        "https://news.example/pagoya-series-b",
        "Pagoya raises Series B",
        "Pagoya raised 40M to expand in Mexico.",
        "2026-09-01",
        0.93,
    ),
    Snippet("snp_bbb", "https://blog.pagoya.example/fraud", "Fighting card fraud", "Ana García wrote about chargeback growth.", None, 0.81),
    Snippet("snp_ccc", "https://jobs.example/pagoya/risk-analyst", "Pagoya hiring", "Pagoya is hiring three risk analysts.", None, 0.55),
]
LEAD = LeadProfile(
    lead_id="lead_ana",
    first_name="Ana",
    last_name="García",
    company="Pagoya",
    role="Head of Risk",
    email="ana@pagoya.example",
    phone="+34600000000",
    country="ES",
    custom={"segment": "fintech"},
)


def make_request(**overrides) -> ComposeRequest:
    fields = {
        "campaign_id": "cmp_q4",
        "goal": "Book a 20-minute demo of our fraud monitoring",
        "voice": VOICE,
        "lead": LEAD,
        "step": StepBrief(touch=2, intent="follow_up_on_signal", channels=("email", "sms"), tone="helpful", cta="a short call"),
        "snippets": SNIPPETS,
        "available_channels": ("email", "sms"),
        "previous_bodies": ("Hi Ana, congrats on the Series B. Would a short call about fraud tooling help?",),
    }
    fields.update(overrides)
    return ComposeRequest(**fields)


def draft_json(**overrides) -> dict:
    draft = {
        "channel": "email",
        "tone": "helpful",
        "cta": "a short call",
        "subject": "Chargebacks after the Series B",
        "body": "Hi Ana,\n\nYour post on chargeback growth (https://blog.pagoya.example/fraud) stuck with me. "
        "Worth a short call next week?\n\nMarta, Ledgerly",
        "cited_snippet_ids": ["snp_bbb"],
    }
    draft.update(overrides)
    return draft


def completion(content: dict | str | None, prompt_tokens: int = 1200, completion_tokens: int = 180, refusal: str | None = None) -> dict:
    return {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion",
        "created": 1790000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": json.dumps(content) if isinstance(content, dict) else content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }


def make(httpserver: HTTPServer, **kwargs) -> OpenAIComposer:
    return OpenAIComposer(KEY, base_url=httpserver.url_for("/v1"), **kwargs)


def sent(httpserver: HTTPServer, i: int) -> dict:
    return httpserver.log[i][0].get_json()


def cost(prompt: int, completion_: int) -> float:
    return (prompt * 0.15 + completion_ * 0.60) / 1_000_000


def test_compose_sends_structured_request_and_returns_draft(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST", headers={"Authorization": f"Bearer {KEY}"}).respond_with_json(completion(draft_json()))
    composer = make(httpserver)
    assert isinstance(composer, Composer)

    draft = composer.compose(make_request())

    assert len(httpserver.log) == 1
    body = sent(httpserver, 0)
    assert body["model"] == "gpt-4o-mini"
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"channel", "tone", "cta", "subject", "body", "cited_snippet_ids"}
    assert schema["properties"]["channel"]["enum"] == ["email", "sms"]
    assert schema["properties"]["subject"]["type"] == ["string", "null"]
    assert schema["properties"]["cited_snippet_ids"]["items"]["enum"] == ["snp_aaa", "snp_bbb", "snp_ccc"]
    prompt = "\n".join(m["content"] for m in body["messages"])
    assert body["messages"][0]["role"] == "system" and VOICE in body["messages"][0]["content"]
    for expected in (
        "Book a 20-minute demo",
        "Ana García",
        "Head of Risk",
        "Pagoya",
        "follow_up_on_signal",
        "segment: fintech",
        "[snp_aaa]",
        "https://jobs.example/pagoya/risk-analyst",
        "congrats on the Series B",  # the previous touch, so the follow-up differs
        "Allowed channels (this lead can be reached on): email, sms",
    ):
        assert expected in prompt
    assert "ana@pagoya.example" not in prompt and "+34600000000" not in prompt

    assert draft.channel == "email"
    assert draft.subject == "Chargebacks after the Series B"
    assert draft.cited_snippet_ids == ["snp_bbb"]
    assert draft.composer == "openai"
    assert draft.flags == []
    assert draft.cost_usd == pytest.approx(cost(1200, 180))


def test_unknown_citation_is_recomposed_once_with_the_reason(httpserver: HTTPServer) -> None:
    bad = draft_json(cited_snippet_ids=["snp_made_up"])
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(bad, 1000, 100))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(draft_json(), 1300, 150))

    draft = make(httpserver).compose(make_request())

    assert len(httpserver.log) == 2
    retry = sent(httpserver, 1)["messages"]
    assert retry[:2] == sent(httpserver, 0)["messages"]
    assert retry[2] == {"role": "assistant", "content": json.dumps(bad)}
    assert retry[3]["role"] == "user" and "snp_made_up" in retry[3]["content"] and "snp_aaa" in retry[3]["content"]
    assert draft.flags == []
    assert draft.cited_snippet_ids == ["snp_bbb"]
    assert draft.cost_usd == pytest.approx(cost(1000, 100) + cost(1300, 150))


def test_invented_link_is_recomposed_and_snippet_links_are_allowed(httpserver: HTTPServer) -> None:
    bad = draft_json(body="Hi Ana, see our case study at https://ledgerly.example/case-study. Also https://news.example/pagoya-series-b.")
    good = draft_json(body="Hi Ana, congrats (https://news.example/pagoya-series-b/). Worth a chat?")
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(bad))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(good))

    draft = make(httpserver).compose(make_request())

    assert len(httpserver.log) == 2
    correction = sent(httpserver, 1)["messages"][-1]["content"]
    assert "https://ledgerly.example/case-study" in correction
    assert "pagoya-series-b" not in correction
    assert draft.body == good["body"]
    assert draft.flags == []


def test_still_invalid_after_retry_is_flagged_with_a_forced_citation(httpserver: HTTPServer) -> None:
    bad = draft_json(body="Hi Ana, book here: https://cal.example/marta", cited_snippet_ids=[])
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(bad, 900, 90))

    draft = make(httpserver).compose(make_request())

    assert len(httpserver.log) == 2  # one recompose, never more
    assert draft.flags == ["no_citation", "invented_link:https://cal.example/marta", "citation_forced"]
    assert draft.cited_snippet_ids == ["snp_aaa"]
    assert draft.body == bad["body"]
    assert draft.cost_usd == pytest.approx(2 * cost(900, 90))


def test_partly_valid_citations_keep_the_valid_subset(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(cited_snippet_ids=["snp_ccc", "snp_zzz"])))
    draft = make(httpserver).compose(make_request())
    assert len(httpserver.log) == 2
    assert draft.cited_snippet_ids == ["snp_ccc"]
    assert draft.flags == ["unknown_citation:snp_zzz"]


def test_links_written_by_the_organisation_are_not_invented(httpserver: HTTPServer) -> None:
    step = StepBrief(touch=1, intent="introduce", channels=("email",), cta="Book a slot at https://cal.example/marta")
    body = "Hi Ana, saw the Series B news. Book a slot at https://cal.example/marta."
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(body=body)))
    draft = make(httpserver).compose(make_request(step=step))
    assert len(httpserver.log) == 1
    assert draft.flags == []


@pytest.mark.parametrize(
    ("channels", "answer", "flags"),
    [
        (("sms",), {"channel": "sms", "subject": None, "body": "a" * 307}, ["too_long"]),
        (("whatsapp",), {"channel": "whatsapp", "subject": None, "body": "a" * 1001}, ["too_long"]),
        (("email",), {"channel": "email", "subject": None, "body": "Hi Ana"}, ["subject_missing"]),
        (("email",), {"channel": "email", "subject": "s" * 121, "body": "Hi Ana"}, ["subject_too_long"]),
        (("email",), {"channel": "email", "body": "b" * 2001}, ["too_long"]),
    ],
)
def test_channel_limits_are_enforced(httpserver: HTTPServer, channels: tuple[str, ...], answer: dict, flags: list[str]) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(**answer)))
    step = StepBrief(touch=1, intent="introduce", channels=channels)
    draft = make(httpserver).compose(make_request(step=step, available_channels=channels))
    assert len(httpserver.log) == 2
    assert draft.flags == flags
    assert draft.channel == channels[0]


def test_sms_within_two_segments_passes_after_typography_is_flattened(httpserver: HTTPServer) -> None:
    body = "Ana’s team is hiring risk analysts — congrats! " * 6  # 282 characters; curly quote and dash would force UCS-2
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(channel="sms", subject="ignored", body=body)))
    draft = make(httpserver).compose(make_request(available_channels=("sms",)))
    assert len(httpserver.log) == 1
    assert draft.flags == []
    assert draft.subject is None
    assert "’" not in draft.body and "—" not in draft.body and "Ana's team" in draft.body


def test_unavailable_channel_falls_back_to_the_preferred_reachable_one(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(channel="whatsapp", subject=None)))
    draft = make(httpserver).compose(make_request())
    assert len(httpserver.log) == 2
    assert draft.channel == "email"
    assert draft.flags == ["channel_unavailable:whatsapp", "subject_missing"]


def test_rate_limit_then_success_is_retried_by_the_sdk(httpserver: HTTPServer) -> None:
    limited = {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(limited, status=429, headers={"retry-after-ms": "5"})
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "overloaded"}}, status=503, headers={"retry-after-ms": "5"}
    )
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(draft_json()))

    draft = make(httpserver).compose(make_request())

    assert [r.status_code for _, r in httpserver.log] == [429, 503, 200]
    assert draft.flags == []


def test_server_errors_give_up_after_max_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"error": {"message": "The server had an error", "type": "server_error", "param": None, "code": None}},
        status=500,
        headers={"retry-after-ms": "1"},
    )
    with pytest.raises(ProviderError) as info:
        make(httpserver, max_retries=2).compose(make_request())
    assert len(httpserver.log) == 3
    assert (info.value.status, info.value.code, info.value.message) == (500, "server_error", "The server had an error")


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (
            401,
            {
                "message": f"Incorrect API key provided: {KEY}. You can find your API key at ...",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            },
            "invalid_api_key",
        ),
        (
            400,
            {
                "message": "Invalid schema for response_format 'outbound_draft'.",
                "type": "invalid_request_error",
                "param": "response_format",
                "code": None,
            },
            "invalid_request_error",
        ),
    ],
)
def test_client_errors_raise_provider_error_without_retry(httpserver: HTTPServer, status: int, error: dict, code: str) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json({"error": error}, status=status)
    with pytest.raises(ProviderError) as info:
        make(httpserver).compose(make_request())
    err = info.value
    assert (err.provider, err.status, err.code) == ("openai", status, code)
    assert err.message.startswith(error["message"].split(":")[0])
    assert KEY not in str(err)
    assert len(httpserver.log) == 1


def test_refusal_twice_raises(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(None, refusal="I can't help with that."))
    with pytest.raises(ProviderError) as info:
        make(httpserver).compose(make_request())
    assert info.value.code == "refusal"
    assert len(httpserver.log) == 2


def test_unparseable_answer_is_retried_then_accepted(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion('{"channel": "email", "body": '))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(draft_json()))
    draft = make(httpserver).compose(make_request())
    assert len(httpserver.log) == 2
    assert "not valid JSON" in sent(httpserver, 1)["messages"][-1]["content"]
    assert draft.flags == []


def test_url_detection_ignores_trailing_punctuation() -> None:
    assert find_urls("See https://a.example/x. And (www.b.example/y), or https://c.example!") == [
        "https://a.example/x",
        "www.b.example/y",
        "https://c.example",
    ]
    checked = check_draft(draft_json(body="Read HTTPS://News.Example/pagoya-series-b/ today"), make_request())
    assert checked.flags == []


def test_key_is_required_and_never_shown() -> None:
    with pytest.raises(ValueError):
        OpenAIComposer("")
    assert KEY not in repr(OpenAIComposer(KEY, base_url="http://127.0.0.1:9/v1"))


def test_without_snippets_nothing_can_be_cited(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(completion(draft_json(body="Hi Ana", cited_snippet_ids=[])))
    draft = make(httpserver).compose(make_request(snippets=[]))
    schema = sent(httpserver, 0)["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["cited_snippet_ids"]["items"] == {"type": "string"}  # an empty enum is not a valid schema
    assert draft.cited_snippet_ids == []
    assert draft.flags == ["no_citation"]


def test_flawed_draft_is_kept_when_the_recompose_is_unusable(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(draft_json(cited_snippet_ids=["snp_nope"])))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(None, refusal="I can't help with that."))
    draft = make(httpserver).compose(make_request())
    assert len(httpserver.log) == 2
    assert draft.flags == ["unknown_citation:snp_nope", "no_citation", "citation_forced"]
    assert draft.cited_snippet_ids == ["snp_aaa"]


def test_a_429_holds_the_shared_limit_back_and_the_sdks_retries_take_rate_slots(httpserver: HTTPServer) -> None:
    """Drafts throttled together are retried one rate slot apart, after the Retry-After, by every thread at once:
    retried at once (the SDK alone), they would meet the limit again together."""
    limited = {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    arrivals: list[tuple[float, int]] = []
    lock = threading.Lock()
    all_in = threading.Barrier(4, timeout=5)  # the four first attempts are answered 429 together

    def handler(request: Request) -> Response:
        with lock:
            arrivals.append((time.monotonic(), len(arrivals)))
            first = len(arrivals) <= 4
        if first:
            all_in.wait()
            return Response(json.dumps(limited), status=429, content_type="application/json", headers={"retry-after-ms": "300"})
        return Response(json.dumps(completion(draft_json())), content_type="application/json")

    httpserver.expect_request(PATH, method="POST").respond_with_handler(handler)
    limit = ProviderLimit(per_second=10.0)
    composer = make(httpserver, limit=limit)
    started = time.monotonic()
    drafts = map_concurrently(composer.compose, [make_request() for _ in range(4)], max_workers=4, limit=limit)
    assert all(d.flags == [] for d in drafts)
    retried = sorted(t for t, i in arrivals if i >= 4)
    assert len(retried) == 4
    assert min(b - a for a, b in zip(retried, retried[1:], strict=False)) >= 0.08  # 10 a second: a slot every 0.1 s
    assert retried[0] - started >= 0.3  # nobody went before the Retry-After


def test_retry_after_is_read_in_milliseconds_then_seconds() -> None:
    assert retry_after_s(httpx.Headers({"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    assert retry_after_s(httpx.Headers({"retry-after": "2"})) == 2.0
    assert retry_after_s(httpx.Headers({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"})) is None
