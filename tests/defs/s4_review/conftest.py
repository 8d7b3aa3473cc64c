"""Review fixtures: small campaigns in manual, batch and auto approval modes, launched and drafted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from outbound_pipeline.defs.partitions import touch_partitions
from outbound_pipeline.domain.touches import touch_key
from outbound_pipeline.runner import LAUNCH, Driver
from tests.conftest import MONDAY_MORNING, add_campaign

CAMPAIGN_YAML = """\
name: {name}
goal: Book a 20-minute call with chief operating officers about hourly re-planned routing.
type: oneshot
approval: {mode}
batch_spot_check: 3
owner_email: owner@example.com
audience:
  lead_list: sample_leads.csv
  filter:
    role: [COO]
sending_window: {{start: "08:00", end: "21:00", days: [mon, tue, wed, thu, fri], default_timezone: Europe/Madrid}}
steps:
  - {{name: intro, delay: 0h, channels: [email, whatsapp, sms], intent: introduce, cta: a 20-minute call next week}}
"""


def write_campaign(workdir: Path, name: str, mode: str) -> str:
    (workdir / "campaigns" / f"{name}.yaml").write_text(CAMPAIGN_YAML.format(name=name, mode=mode), encoding="utf-8")
    return name


@pytest.fixture
def drafted(driver: Driver, instance, workdir: Path) -> Callable[[str], str]:
    """Launch a small campaign in the given approval mode and draft its touch 1; returns the touch partition key."""

    def make(mode: str) -> str:
        name = write_campaign(workdir, f"review_{mode}", mode)
        add_campaign(instance, name)
        assert driver.run(LAUNCH, MONDAY_MORNING, name).success
        key = touch_key(name, 1)
        instance.add_dynamic_partitions(touch_partitions.name, [key])
        assert driver.run(["drafts"], MONDAY_MORNING, key).success
        return key

    return make
