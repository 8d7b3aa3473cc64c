"""Partitions: one per campaign, and one per campaign touch (`<campaign>.t<n>`)."""

from __future__ import annotations

import re

import dagster as dg

campaign_partitions = dg.DynamicPartitionsDefinition(name="campaigns")
touch_partitions = dg.DynamicPartitionsDefinition(name="campaign_touches")

_TOUCH_KEY = re.compile(r"^(?P<campaign>[a-z0-9][a-z0-9_-]*)\.t(?P<touch>[1-9]\d*)$")


def touch_key(campaign_id: str, touch: int) -> str:
    return f"{campaign_id}.t{touch}"


def parse_touch_key(key: str) -> tuple[str, int]:
    """'demo_drip.t2' -> ('demo_drip', 2); anything else is a clear error."""
    match = _TOUCH_KEY.match(key)
    if not match:
        raise ValueError(f"touch partition key {key!r} is not of the form <campaign>.t<touch>, e.g. demo_drip.t1")
    return match.group("campaign"), int(match.group("touch"))


def open_touch(instance: dg.DagsterInstance, campaign_id: str, touch: int) -> bool:
    """Add a touch partition if it is not there yet; True when it was added now."""
    key = touch_key(campaign_id, touch)
    if instance.has_dynamic_partition(touch_partitions.name, key):
        return False
    instance.add_dynamic_partitions(touch_partitions.name, [key])
    return True
