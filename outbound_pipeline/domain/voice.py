"""The organisation's voice: `voice.md` as text for a model, plus its `key: value` identity facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Voice:
    text: str
    facts: dict[str, str] = field(default_factory=dict)

    def fact(self, key: str, default: str = "") -> str:
        return self.facts.get(key, default)


def parse_voice(text: str) -> Voice:
    facts = {m.group(1).lower(): m.group(2).strip() for m in re.finditer(r"^([A-Za-z_]+):\s*(.+)$", text, re.MULTILINE)}
    return Voice(text=text, facts=facts)


def load_voice(path: str | Path) -> Voice:
    path = Path(path)
    try:
        return parse_voice(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"voice file {path} not found: write the organisation's voice there (see data/voice.md)") from None
