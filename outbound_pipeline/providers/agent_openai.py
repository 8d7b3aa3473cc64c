"""The conversation agent on OpenAI's chat completions (or any OpenAI-compatible server), streamed token by token.

The model speaks in short turns and ends the call through one tool, `end_call(outcome, summary)`, so the outcome is
structured, never parsed out of prose. An outcome outside the allowed ones is read as `call_back_later` (a person will
look at the summary), never dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

from openai import OpenAI

from outbound_pipeline.domain.dialer import OUTCOMES
from outbound_pipeline.providers.base import CallContext, EndCall

END_CALL_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "End the call once its outcome is clear (after saying goodbye in the same turn).",
        "parameters": {
            "type": "object",
            "properties": {
                "outcome": {"type": "string", "enum": list(OUTCOMES)},
                "summary": {"type": "string", "description": "One or two sentences: what the person said and what happens next."},
            },
            "required": ["outcome", "summary"],
            "additionalProperties": False,
        },
    },
}


def system_message(context: CallContext) -> str:
    """The agent's prompt file, then the call's own facts: goal, call to action, research notes, how to end."""
    notes = "\n".join(f"- {s}" for s in context.snippets) or "- none"
    return (f"{context.system_prompt.strip()}\n\n"
            f"You are on a phone call with {context.first_name or 'the contact'}. Campaign goal: {context.goal}\n"
            f"Call to action: {context.cta or 'agree on a next step'}\n"
            f"Research notes about them (cite only these facts):\n{notes}\n\n"
            "Speak one or two short sentences per turn, plain text with no markup. When the outcome is clear, say goodbye "
            f"and call end_call with one of: {', '.join(OUTCOMES)}.")


class OpenAIAgent:
    """`ConversationAgent` streaming from the chat completions API."""

    name = "openai"

    def __init__(self, api_key: str, model: str = "gpt-4o-mini", base_url: str | None = None, timeout: float = 20.0):
        self.model = model
        self._client = OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=1)

    def stream(self, context: CallContext, turns: Sequence[tuple[str, str]]) -> Iterator[str | EndCall]:
        if not turns:  # the opening line is the campaign's own words
            yield context.opening_line
            return
        messages: list[Any] = [{"role": "system", "content": system_message(context)}]
        messages += [{"role": "assistant" if role == "agent" else "user", "content": text} for role, text in turns if role != "system"]
        stream = self._client.chat.completions.create(model=self.model, messages=messages, tools=[cast(Any, END_CALL_TOOL)],
                                                      stream=True, temperature=0.4)
        arguments: dict[int, str] = {}
        names: dict[int, str] = {}
        for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            if delta.content:
                yield delta.content
            for call in delta.tool_calls or []:
                if call.function is not None:
                    names[call.index] = names.get(call.index, "") + (call.function.name or "")
                    arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
        for index, name in names.items():
            if name == "end_call":
                yield parse_end_call(arguments.get(index, ""))
                return


def parse_end_call(arguments: str) -> EndCall:
    """The tool call's arguments as an `EndCall`; unreadable or unknown outcomes become `call_back_later`."""
    try:
        data = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        data = {}
    data = data if isinstance(data, dict) else {}
    outcome = data.get("outcome") if data.get("outcome") in OUTCOMES else "call_back_later"
    return EndCall(str(outcome), str(data.get("summary") or "")[:500])
