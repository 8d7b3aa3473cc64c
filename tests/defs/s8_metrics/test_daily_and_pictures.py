"""Metrics materialisations: daily partitions kept as history and idempotent, charts and verdicts in the metadata, the schedule and the sensor."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta

import dagster as dg
import pandas as pd

from outbound_pipeline.defs.s8_metrics.daily import metrics_after_touch_sensor, metrics_daily_schedule
from tests.store.metrics_fixtures import DAY1, DAY2, build_campaign

LATER = DAY2 + timedelta(days=3)
PNG = b"\x89PNG\r\n\x1a\n"


def _pngs(markdown: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)]


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    return result.asset_materializations_for_node(asset)[0].metadata


def test_daily_partitions_are_history_and_idempotent(driver, db):
    with db() as con:
        build_campaign(con)
    first = driver.run(["metrics_daily"], LATER, partition_key=DAY1.date().isoformat())
    assert first.success
    with db() as con:
        day1 = con.execute("SELECT * FROM metrics_daily ORDER BY ALL").df()
    assert driver.run(["metrics_daily"], LATER + timedelta(days=2), partition_key=DAY1.date().isoformat()).success
    assert driver.run(["metrics_daily"], LATER, partition_key=DAY2.date().isoformat()).success
    with db() as con:
        again = con.execute("SELECT * FROM metrics_daily WHERE day = ? ORDER BY ALL", [DAY1.date()]).df()
        history = con.execute("SELECT day, sent, replied, reply_rate FROM metrics_daily WHERE touch = 0 AND channel = 'all' ORDER BY day").df()
    pd.testing.assert_frame_equal(day1, again)  # the same day, materialised again later: the same rows
    assert list(history["sent"]) == [5, 6] and list(history["replied"]) == [2, 2]
    metadata = _metadata(first, "metrics_daily")
    assert metadata["rows"].value == len(day1) and metadata["campaigns"].value == 1
    pictures = _pngs(metadata["pictures"].value)
    assert len(pictures) == 2 and all(p.startswith(PNG) for p in pictures)  # funnel and rates over time


def test_campaign_metrics_carry_charts_and_a_percent_summary(driver, db):
    with db() as con:
        build_campaign(con)
    result = driver.run(["campaign_metrics", "variant_metrics"], LATER)
    assert result.success
    metadata = _metadata(result, "campaign_metrics")
    assert metadata["campaigns"].value == 1 and metadata["leads_replied"].value == 2
    summary = metadata["summary"].value
    assert "50.0%" in summary and "83.3%" in summary  # reply rate 2/4, delivery rate 5/6
    pictures = _pngs(metadata["pictures"].value)
    assert len(pictures) == 2 and all(p.startswith(PNG) for p in pictures)
    assert "step 1" in metadata["pictures"].value  # the summary table's breakdowns
    variants = _metadata(result, "variant_metrics")
    verdicts = variants["verdicts"].value
    assert [(v["campaign_id"], v["step"], v["state"]) for v in verdicts] == [("c1", "step 1", "no_difference_yet")]
    assert "more sends per variant needed" in variants["ab"].value and _pngs(variants["ab"].value)[0].startswith(PNG)


def test_schedule_refreshes_today_and_closes_yesterday_at_midnight():
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 3, 0, 5))
    keys = [r.partition_key for r in metrics_daily_schedule(context)]
    assert keys == ["2026-03-03", "2026-03-02"]
    midday = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 3, 12, 5))
    assert [r.partition_key for r in metrics_daily_schedule(midday)] == ["2026-03-03"]


def test_sensor_counts_today_after_every_touch_run(instance):
    from outbound_pipeline.definitions import defs

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="sends"))
    context = dg.build_sensor_context(instance=instance, definitions=defs)
    requests = [r for r in metrics_after_touch_sensor(context) if isinstance(r, dg.RunRequest)]
    assert len(requests) == 1 and requests[0].partition_key == datetime.now().date().isoformat()
    # nothing new since: no second request
    assert not [r for r in metrics_after_touch_sensor(context) if isinstance(r, dg.RunRequest)]
