"""Charts are valid, small, stable PNGs, and embed in Markdown as data URIs the Dagster UI can show."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable

import matplotlib.image
import pandas as pd
import pytest

from outbound_pipeline.domain.experiments import ABVerdict, verdict
from outbound_pipeline.engine.charts import ab_chart, funnel_chart, funnel_frame, markdown_image, png_data_uri, rates_over_time_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 60_000


def decoded_size(png: bytes) -> tuple[int, int]:
    """(width, height) of the PNG, after a full decode (a truncated or corrupt file raises)."""
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    return pixels.shape[1], pixels.shape[0]


def funnel() -> pd.DataFrame:
    return funnel_frame({"entered": 300, "sent": 266, "delivered": 257, "engaged": 127, "replied": 21, "step": "intro"})


def daily() -> pd.DataFrame:
    return pd.DataFrame({
        "day": pd.date_range("2026-03-02", periods=10).date,
        "delivery_rate": [0.97, 0.96, 0.98, 0.95, 0.97, 0.96, 0.97, 0.98, 0.99, 0.97],
        "reply_rate": [0.05, 0.07, 0.08, 0.09, None, 0.08, 0.10, 0.09, 0.085, 0.086],
    })


def ab_verdict() -> ABVerdict:
    variants = pd.DataFrame([("direct", 900, 73), ("warm", 900, 128)], columns=["variant", "trials", "successes"])
    return verdict(variants, baseline_rate=0.08, mde=0.04, step="intro")


@pytest.mark.parametrize("draw", [lambda: funnel_chart(funnel()), lambda: rates_over_time_chart(daily()), lambda: ab_chart(ab_verdict())],
                         ids=["funnel", "rates", "ab"])
def test_charts_are_small_valid_pngs_with_stable_bytes(draw: Callable[[], bytes]) -> None:
    png = draw()
    assert png.startswith(PNG_SIGNATURE)
    assert decoded_size(png) == (800, 400)
    assert len(png) < MAX_BYTES
    assert draw() == png  # the same data gives the same bytes
    assert b"Software" not in png and b"matplotlib" not in png.lower()


def test_funnel_frame_keeps_the_stages_a_row_has_in_order() -> None:
    assert funnel()["stage"].tolist() == ["entered", "sent", "delivered", "engaged", "replied"]
    assert funnel()["count"].tolist() == [300, 266, 257, 127, 21]
    assert funnel_frame(pd.Series({"sent": 5, "delivered": None}), stages=("sent", "delivered", "replied"))["stage"].tolist() == ["sent"]


def test_different_data_gives_a_different_picture() -> None:
    other = funnel().assign(count=[300, 250, 240, 100, 30])
    assert funnel_chart(other) != funnel_chart(funnel())


def test_empty_data_draws_a_no_data_chart_instead_of_failing() -> None:
    for png in (funnel_chart(pd.DataFrame(columns=["stage", "count"])), rates_over_time_chart(pd.DataFrame(columns=["day", "reply_rate"])),
                rates_over_time_chart(pd.DataFrame({"day": ["2026-03-02"]}))):
        assert png.startswith(PNG_SIGNATURE) and decoded_size(png) == (800, 400)


def test_markdown_image_round_trips_the_png() -> None:
    png = funnel_chart(funnel())
    markdown = markdown_image(png, "Funnel [demo_drip]\nall steps")
    match = re.fullmatch(r"!\[([^\[\]\n]*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match is not None
    assert match.group(1) == "Funnel (demo_drip) all steps"
    assert base64.b64decode(match.group(2)) == png
    assert png_data_uri(png) == "data:image/png;base64," + match.group(2)
