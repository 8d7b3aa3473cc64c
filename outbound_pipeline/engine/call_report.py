"""A voice campaign's stats (`store.calls.call_stats`) as a person reads them in a terminal."""

from __future__ import annotations

from typing import Any

from outbound_pipeline.domain.dialer import STATUSES


def _seconds(value: object) -> str:
    return "-" if value is None else f"{value}s"


def format_call_stats(stats: dict[str, Any]) -> str:
    contacts, metrics = stats["contacts"], stats["call_metrics"]
    minutes = metrics["billed_minutes"]
    per_minute = f" (${metrics['cost_usd'] / minutes:.4f}/min)" if minutes else ""
    outcomes = ", ".join(f"{k} {v}" for k, v in stats["outcomes"].items()) or "none yet"
    return "\n".join([
        f"campaign {stats['campaign_id']} ({stats['campaign_status']}): {contacts['total']} contacts, {stats['progress']}% done",
        "contacts  " + "  ".join(f"{s} {contacts.get(s, 0)}" for s in STATUSES),
        f"calls     total_attempts {metrics['total_attempts']}  answered by a person {metrics['answered_by_human']}  "
        f"avg {_seconds(metrics['avg_duration_seconds'])}  max {_seconds(metrics['max_duration_seconds'])}  "
        f"min {_seconds(metrics['min_duration_seconds'])}",
        f"outcomes  {outcomes}",
        f"cost      ${metrics['cost_usd']:.2f} for {minutes} billed minutes{per_minute}",
    ])
