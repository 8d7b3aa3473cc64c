"""What differs between two versions of a campaign spec, in words a person can act on.

A launched campaign runs on the spec frozen at its launch; an edited file is refused with this list.
"""

from __future__ import annotations

from typing import Any

MAX_LISTED = 10  # a longer list is cut with a count of the rest


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Every leaf that differs between two JSON-like values, as `path: old -> new` (iterative: specs are user data)."""
    found: list[str] = []
    pending = [(where, old, new)]
    while pending:
        path, a, b = pending.pop(0)
        if isinstance(a, dict) and isinstance(b, dict):
            pending.extend((f"{path}.{key}" if path else str(key), a.get(key), b.get(key)) for key in sorted(set(a) | set(b), key=str)
                           if a.get(key) != b.get(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            pending.extend((f"{path}[{i}]", x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        elif isinstance(a, list) and isinstance(b, list):
            found.append(f"{path}: {len(a)} items -> {len(b)} items")
        elif a != b:
            found.append(f"{path or '(spec)'}: {_short(a)} -> {_short(b)}")
    return found


def describe(changes: list[str]) -> str:
    """The changes as one line each, at most MAX_LISTED of them."""
    shown = [f"  {c}" for c in changes[:MAX_LISTED]]
    if len(changes) > MAX_LISTED:
        shown.append(f"  ... and {len(changes) - MAX_LISTED} more")
    return "\n".join(shown)
