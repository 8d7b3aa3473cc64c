"""Dagster partitions: one per campaign, one per campaign touch (`<campaign>.t<n>`, see `domain.touches`)."""

from __future__ import annotations

import dagster as dg

from outbound_pipeline.domain.touches import touch_key

campaign_partitions = dg.DynamicPartitionsDefinition(name="campaigns")
touch_partitions = dg.DynamicPartitionsDefinition(name="campaign_touches")


def open_touch(instance: dg.DagsterInstance, campaign_id: str, touch: int) -> bool:
    """Add a touch partition if it is not there yet; True when it was added now."""
    key = touch_key(campaign_id, touch)
    if instance.has_dynamic_partition(touch_partitions.name, key):
        return False
    instance.add_dynamic_partitions(touch_partitions.name, [key])
    return True
