"""The OpenAI intent classifier on the chat completions wire format; opt-out keywords never reach the model."""

from __future__ import annotations

import json

from pytest_httpserver import HTTPServer

from outbound_pipeline.providers.base import IntentClassifier
from outbound_pipeline.providers.intent_openai import OpenAIIntentClassifier

PATH = "/v1/chat/completions"


def completion(content: str) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1767600000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128}}


def make(httpserver: HTTPServer) -> OpenAIIntentClassifier:
    return OpenAIIntentClassifier("sk-test", base_url=httpserver.url_for("/v1"), max_retries=0)


def test_structured_request_and_answer(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST", headers={"Authorization": "Bearer sk-test"}).respond_with_json(
        completion(json.dumps({"intent": "not_now"})))
    classifier = make(httpserver)
    assert isinstance(classifier, IntentClassifier)
    assert classifier.classify("Circle back after the summer") == "not_now"
    body = httpserver.log[0][0].get_json()
    assert body["response_format"]["type"] == "json_schema" and body["response_format"]["json_schema"]["strict"] is True
    assert "opt_out" in body["response_format"]["json_schema"]["schema"]["properties"]["intent"]["enum"]
    assert body["messages"][-1] == {"role": "user", "content": "Circle back after the summer"}


def test_opt_out_keywords_always_win_without_a_call(httpserver: HTTPServer) -> None:
    classifier = make(httpserver)
    for text in ("STOP", "stop.", "Stop!!", "unsubscribe", "QUIT", "stopall", "Please remove me from this list"):
        assert classifier.classify(text) == "opt_out"
    assert httpserver.log == []


def test_outage_or_nonsense_falls_back_to_the_rules(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json({"error": {"message": "overloaded"}}, status=503)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(completion(json.dumps({"intent": "buy_now"})))
    classifier = make(httpserver)
    assert classifier.classify("Yes, let's talk next week") == "interested"
    assert classifier.classify("How much does it cost?") == "question"
    assert len(httpserver.log) == 2
