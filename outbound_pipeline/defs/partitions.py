"""Dagster partitions: one per campaign, one per campaign touch (`<campaign>.t<n>`, see `domain.touches`)."""

from __future__ import annotations

import dagster as dg

from outbound_pipeline.domain.touches import touch_key

CAMPAIGNS = "campaigns"  # the dynamic partitions' names, as the instance stores them
CAMPAIGN_TOUCHES = "campaign_touches"

campaign_partitions = dg.DynamicPartitionsDefinition(name=CAMPAIGNS)
touch_partitions = dg.DynamicPartitionsDefinition(name=CAMPAIGN_TOUCHES)


def add_campaign(instance: dg.DagsterInstance, campaign_id: str) -> bool:
    """Add a campaign partition if it is not there yet; True when it was added now."""
    if instance.has_dynamic_partition(CAMPAIGNS, campaign_id):
        return False
    instance.add_dynamic_partitions(CAMPAIGNS, [campaign_id])
    return True


def open_touch(instance: dg.DagsterInstance, campaign_id: str, touch: int) -> bool:
    """Add a touch partition if it is not there yet; True when it was added now."""
    key = touch_key(campaign_id, touch)
    if instance.has_dynamic_partition(CAMPAIGN_TOUCHES, key):
        return False
    instance.add_dynamic_partitions(CAMPAIGN_TOUCHES, [key])
    return True


def touch_is_open(instance: dg.DagsterInstance, campaign_id: str, touch: int) -> bool:
    return instance.has_dynamic_partition(CAMPAIGN_TOUCHES, touch_key(campaign_id, touch))
