"""Who a campaign targets: the contact lists it names and the segment that picks leads from them.

A campaign's `audience.lead_list` is a file imported at launch into the list named after the file
(`leads/spring.csv` -> list `spring.csv`); `audience.lists` names lists filled with `outbound contacts import`.
The older `audience.filter` (`field: value | [values]`) is a segment of `eq`/`in` conditions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

from outbound_pipeline.domain.segments import Segment, segment_from_filter


def lead_list_name(path: str) -> str:
    """The contact list a campaign's lead_list file fills: the file's name without its folders."""
    return PurePath(path.replace("\\", "/")).name


def campaign_lists(lead_list: str | None, lists: Sequence[str]) -> list[str]:
    """The lists a campaign draws from, in order, each once: its lead_list file's list first, then `lists`."""
    names = ([lead_list_name(lead_list)] if lead_list else []) + list(lists)
    return list(dict.fromkeys(names))


def lists_in_spec(spec_json: str) -> list[str]:
    """The lists a frozen campaign spec (JSON of the campaigns table) draws from, read without validating the whole spec."""
    audience = json.loads(spec_json).get("audience") or {}
    return campaign_lists(audience.get("lead_list") or None, audience.get("lists") or [])


def combined_segment(filters: Mapping[str, Any], segment: Segment | None) -> Segment:
    """The filter's conditions followed by the segment's: a lead must meet them all."""
    conditions = [*segment_from_filter(filters).conditions, *(segment.conditions if segment else [])]
    return Segment(conditions=conditions)

