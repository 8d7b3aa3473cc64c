"""Scheduled launches, kept in the Dagster instance so the sensor that fires them never opens DuckDB.

A scheduled launch is a dynamic partition key `<campaign>@<UTC time>` (e.g. `demo_drip@20260105T090000Z`);
the sensor requests `launch_job` for every key whose time has come and removes the key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

SCHEDULED_LAUNCHES = "scheduled_launches"
scheduled_launches = dg.DynamicPartitionsDefinition(name=SCHEDULED_LAUNCHES)
_FORMAT = "%Y%m%dT%H%M%SZ"


def parse_launch_time(text: str) -> datetime:
    """An ISO time with a zone offset -> naive UTC. A time without an offset is ambiguous and refused."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"--at {text!r} is not an ISO time such as 2026-01-05T09:00:00+01:00") from exc
    if moment.tzinfo is None:
        raise ValueError(f"--at {text!r} has no zone offset: write it as e.g. {text}+01:00 or {text}Z")
    return moment.astimezone(UTC).replace(tzinfo=None)


def launch_key(campaign_id: str, at_utc: datetime) -> str:
    """The scheduled launch's partition key, e.g. `demo_drip@20260105T090000Z`."""
    return f"{campaign_id}@{at_utc.strftime(_FORMAT)}"


def parse_launch_key(key: str) -> tuple[str, datetime]:
    """(campaign, UTC launch time) of a scheduled launch key."""
    campaign, _, stamp = key.partition("@")
    return campaign, datetime.strptime(stamp, _FORMAT)


def schedule_launch(instance: dg.DagsterInstance, campaign_id: str, at_utc: datetime) -> str:
    """Record the launch in the instance, replacing any earlier schedule of the same campaign."""
    cancel_launches(instance, campaign_id)
    key = launch_key(campaign_id, at_utc)
    instance.add_dynamic_partitions(SCHEDULED_LAUNCHES, [key])
    return key


def cancel_launches(instance: dg.DagsterInstance, campaign_id: str) -> list[str]:
    """Remove every scheduled launch of the campaign; returns their keys."""
    keys = [k for k in instance.get_dynamic_partitions(SCHEDULED_LAUNCHES) if k.startswith(f"{campaign_id}@")]
    for key in keys:
        instance.delete_dynamic_partition(SCHEDULED_LAUNCHES, key)
    return keys


def due_launches(instance: dg.DagsterInstance, now_utc: datetime) -> list[str]:
    """Keys whose launch time is at or before `now_utc`."""
    return sorted(k for k in instance.get_dynamic_partitions(SCHEDULED_LAUNCHES) if parse_launch_key(k)[1] <= now_utc)
