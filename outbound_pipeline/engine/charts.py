"""Small PNG charts for metrics metadata and the campaign report: the funnel, rates over time and A/B intervals.

Charts are drawn on a bare matplotlib `Figure` with the Agg canvas, never through pyplot, so no
display or GUI backend is ever touched (this runs inside Dagster workers and CI) and nothing global
is left behind between calls. Every chart is about 800x400 px and a few tens of kB, small enough to
embed in Dagster Markdown metadata as a data URI (`markdown_image`). The PNG carries no timestamp
and no software tag, so the same data always gives the same bytes, and re-materialising an
unchanged asset does not produce a "changed" image.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from outbound_pipeline.domain.experiments import ABVerdict

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn, not by every process that loads the code location
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100  # 800 x 400 px
BAR_COLOUR = "#4C72B0"
WINNER_COLOUR = "#2E8B57"
# One look whatever the machine's matplotlibrc says, so charts (and their bytes) do not depend on where they were drawn.
STYLE: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "path.simplify": True,
    "svg.hashsalt": "outbound",
}
FUNNEL_STAGES = ("entered", "sent", "delivered", "engaged", "replied")  # the columns of a `funnel_metrics` row


def funnel_frame(counts: Mapping[str, Any], stages: Sequence[str] = FUNNEL_STAGES) -> pd.DataFrame:
    """A (stage, count) frame from one metrics row (a dict or a pandas Series), keeping only the stages it has."""
    rows = [(stage, int(counts[stage])) for stage in stages if stage in counts and not pd.isna(counts[stage])]
    return pd.DataFrame(rows, columns=["stage", "count"])


def funnel_chart(stages: pd.DataFrame, title: str = "Funnel") -> bytes:
    """Horizontal bars, first stage on top, each labelled with its count, its share of the first stage and of the previous one."""
    with _figure(title) as (figure, ax):
        if stages.empty:
            _no_data(ax)
        else:
            names = [str(s) for s in stages["stage"]]
            counts = [int(c) for c in stages["count"]]
            positions = list(range(len(names)))[::-1]
            ax.barh(positions, counts, color=BAR_COLOUR, height=0.6)
            ax.set_yticks(positions, labels=names)
            ax.set_xlim(0, max(max(counts), 1) * 1.35)  # room for the labels right of the bars
            ax.set_xlabel("leads / messages")
            first = counts[0]
            for i, (position, count) in enumerate(zip(positions, counts, strict=True)):
                label = f"{count:,}"
                if i == 1:
                    label += f"  ({_share(count, first)} of {names[0]})"
                elif i > 1:
                    label += f"  ({_share(count, first)} of {names[0]}, {_share(count, counts[i - 1])} of {names[i - 1]})"
                ax.text(count, position, "  " + label, va="center", fontsize=8)
        return _png(figure)


def rates_over_time_chart(daily: pd.DataFrame, title: str = "Rates over time", day_column: str = "day") -> bytes:
    """One line per rate column (proportions in [0, 1]) against the day, the y axis in percent; missing days stay gaps."""
    with _figure(title) as (figure, ax):
        rate_columns = [c for c in daily.columns if c != day_column]
        ordered = (daily.assign(**{day_column: pd.to_datetime(daily[day_column])}).dropna(subset=[day_column]).sort_values(day_column)
                   if day_column in daily.columns else daily.iloc[0:0])
        if ordered.empty or not rate_columns:
            _no_data(ax)
        else:
            for column in rate_columns:
                ax.plot(ordered[day_column], pd.to_numeric(ordered[column], errors="coerce"), marker="o", markersize=3,
                        linewidth=1.5, label=str(column).removesuffix("_rate").replace("_", " "))
            from matplotlib.ticker import PercentFormatter

            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            ax.set_ylim(bottom=0)
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)  # outside: never over a line
            ax.grid(axis="y", alpha=0.3)
            first_day, last_day = ordered[day_column].min(), ordered[day_column].max()
            half_day = pd.Timedelta(hours=12)
            ax.set_xlim(first_day - half_day, last_day + half_day)  # a single day would otherwise be drawn across years
            span_days = max(1, (last_day - first_day).days)
            from matplotlib import dates

            ax.xaxis.set_major_locator(dates.DayLocator(interval=max(1, math.ceil(span_days / 10))))  # whole days, at most ~10 ticks
            ax.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
            ax.tick_params(axis="x", labelrotation=30)
        return _png(figure)


def ab_chart(verdict: ABVerdict, title: str | None = None) -> bytes:
    """Each variant's rate as a dot with its confidence interval, the winner (if any) in green: overlap at a glance."""
    heading = title or (f"A/B: {verdict.step}" if verdict.step else "A/B test")
    with _figure(heading) as (figure, ax):
        variants = [v for v in verdict.variants if v.rate is not None]
        if not variants:
            _no_data(ax)
        else:
            positions = list(range(len(variants)))[::-1]
            for position, v in zip(positions, variants, strict=True):
                rate = float(v.rate or 0.0)
                colour = WINNER_COLOUR if v.variant == verdict.winner else BAR_COLOUR
                ax.errorbar(rate, position, xerr=[[rate - v.ci_low], [v.ci_high - rate]], fmt="o", color=colour, capsize=4)
                ax.text(v.ci_high, position, f"  {rate:.1%} of {v.trials:,}", va="center", fontsize=8)
            ax.set_yticks(positions, labels=[v.variant for v in variants])
            ax.set_ylim(-0.7, len(variants) - 0.3)
            ax.set_xlim(0, min(1.0, max(v.ci_high for v in variants) * 1.3 + 0.02))
            from matplotlib.ticker import PercentFormatter

            ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
            ax.set_xlabel(f"{verdict.metric} with its {verdict.confidence:.0%} interval\n{verdict.text}")
        return _png(figure)


def png_data_uri(png: bytes) -> str:
    """`data:image/png;base64,...`, for an <img> or a Markdown image that needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(png: bytes, alt: str) -> str:
    """A Markdown image with the PNG inline, for `dg.MetadataValue.md(...)`: the Dagster UI shows it with no file to serve."""
    safe_alt = " ".join(alt.replace("[", "(").replace("]", ")").split())  # brackets or newlines would end the alt text early
    return f"![{safe_alt}]({png_data_uri(png)})"


@contextmanager
def _figure(title: str) -> Iterator[tuple[Figure, Axes]]:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")  # fits labels and legends inside
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        ax.set_title(title, loc="left")
        yield figure, ax


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # Metadata {"Software": None} drops matplotlib's version tag; Agg writes no date, so the bytes depend on the data only.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    figure.clear()
    return buffer.getvalue()


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes, fontsize=12, color="grey")
    ax.set_axis_off()


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"
