"""The campaign report: one self-contained HTML page and a short terminal summary, from frames the metrics already hold.

The page has no external resource (CSS inline, charts as data URIs) so it can be mailed, attached to a
ticket or opened offline, and it forbids scripts with a Content-Security-Policy. Every string that can
come from a user (campaign, step and variant names, column names, cost labels) goes through
`html.escape`, and for the terminal through a filter that drops control characters, so a name cannot
inject markup or terminal escape sequences. Rates are proportions in the frames and shown as percentages.
"""

from __future__ import annotations

import html
import math
from collections.abc import Collection, Mapping, Sequence

import pandas as pd
from tabulate import tabulate

from outbound_pipeline.domain.experiments import ABVerdict
from outbound_pipeline.engine.charts import ab_chart, funnel_chart, png_data_uri, rates_over_time_chart

MISSING = "–"
SHARE_OF_FIRST, SHARE_OF_PREVIOUS = "of first stage", "of previous stage"
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1rem; margin-bottom: 0.3rem; } .meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; } th { background: #f5f5f5; text-align: left; } td.num { text-align: right; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
.verdict { font-weight: bold; } .winner { color: #2e7d32; } .no_difference_yet { color: #8a6d00; } .no_difference { color: #555; }
"""


def render_html_report(
    campaign_id: str,
    summary: pd.DataFrame,
    funnel: pd.DataFrame,
    daily: pd.DataFrame,
    verdicts: Sequence[ABVerdict],
    cost: Mapping[str, object],
    generated_at: str | None = None,
) -> str:
    """The whole report as one HTML string.

    summary: `campaign_metrics` rows of the campaign (any columns; `*_rate` shown as percentages, `cost_usd` in dollars);
    funnel: (stage, count) as for `charts.funnel_chart`; daily: (day, rate columns...) as for `charts.rates_over_time_chart`;
    verdicts: one per step with variants; cost: label -> US dollars (e.g. research, compose, send, total).
    `generated_at` is printed as given (pass the pipeline clock's time; left out, the page depends on its inputs only).
    """
    name = html.escape(campaign_id)
    sections = [
        f"<h1>Campaign report: {name}</h1>",
        f'<p class="meta">generated at {html.escape(generated_at)}</p>' if generated_at else "",
        "<section><h2>Summary</h2>" + html_table(summary) + "</section>",
        "<section><h2>Funnel</h2>" + _img(funnel_chart(funnel, title=f"Funnel: {campaign_id}"), f"Funnel of {campaign_id}")
        + html_table(funnel_table(funnel), rate_columns=(SHARE_OF_FIRST, SHARE_OF_PREVIOUS)) + "</section>",
        "<section><h2>Rates over time</h2>" + _img(rates_over_time_chart(daily), f"Daily rates of {campaign_id}") + "</section>",
        "<section><h2>A/B tests</h2>" + ("".join(_verdict_html(v) for v in verdicts) or "<p>No step of this campaign has variants.</p>")
        + "</section>",
        "<section><h2>Cost</h2>" + html_table(cost_table(cost)) + "</section>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        # Nothing in the page may run or load: an escaped name that slipped through still could not execute.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Campaign report: {name}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(s for s in sections if s)
        + "\n</body>\n</html>\n"
    )


def terminal_summary(campaign_id: str, summary: pd.DataFrame, verdicts: Sequence[ABVerdict] = (), cost: Mapping[str, object] | None = None) -> str:
    """What `outbound report CAMPAIGN` prints: the summary table with percentages, one line per A/B verdict, the cost."""
    lines = [f"Campaign {_plain(campaign_id)}", ""]
    shown = formatted(summary)
    align = ["right" if pd.api.types.is_numeric_dtype(summary[c]) else "left" for c in summary.columns]
    lines.append(tabulate(shown.map(_plain).values.tolist(), headers=[_plain(c) for c in shown.columns], tablefmt="simple",
                          disable_numparse=True, colalign=align) if not shown.empty else "no metrics yet")
    if verdicts:
        lines += ["", "A/B tests:"]
        lines += [f"  {_plain(v.step or 'step')}: {_plain(v.text)}" for v in verdicts]
    if cost:
        lines += ["", "Cost: " + ", ".join(f"{_plain(str(label))} {_money(value)}" for label, value in cost.items())]
    return "\n".join(lines) + "\n"


def funnel_table(funnel: pd.DataFrame) -> pd.DataFrame:
    """The funnel with each stage's share of the first stage and of the one before it, the numbers behind the chart."""
    counts = [int(c) for c in funnel["count"]] if not funnel.empty else []
    first = counts[0] if counts else 0
    return pd.DataFrame({
        "stage": list(funnel["stage"]) if counts else [],
        "count": counts,
        SHARE_OF_FIRST: [c / first if first else math.nan for c in counts],
        SHARE_OF_PREVIOUS: [math.nan] + [c / p if p else math.nan for p, c in zip(counts, counts[1:], strict=False)] if counts else [],
    })


def cost_table(cost: Mapping[str, object]) -> pd.DataFrame:
    """One row per cost label, in dollars."""
    return pd.DataFrame({"item": [str(k) for k in cost], "cost_usd": list(cost.values())})


def formatted(frame: pd.DataFrame, rate_columns: Collection[str] = ()) -> pd.DataFrame:
    """Every cell as display text: rates (`*_rate`, `rate`, `ci_low`, `ci_high`, `rate_columns`) in percent, costs in dollars, counts with separators."""
    shown = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        label = str(column)
        if _is_rate(label) or label in rate_columns:
            shown[label] = [_percent(v) for v in frame[column]]
        elif label.startswith("cost") or label.endswith("cost_usd"):
            shown[label] = [_money(v) for v in frame[column]]
        else:
            shown[label] = [_number(v) for v in frame[column]]
    return shown.reset_index(drop=True)


def html_table(frame: pd.DataFrame, rate_columns: Collection[str] = ()) -> str:
    """An HTML table of `formatted(frame)`, every header and cell escaped; numbers right-aligned."""
    if frame.empty:
        return "<p>none yet</p>"
    shown = formatted(frame, rate_columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{html.escape(v)}</td>' if is_num else f"<td>{html.escape(v)}</td>"
                         for v, is_num in zip(row, numeric, strict=True)) + "</tr>"
        for row in shown.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _verdict_html(verdict: ABVerdict) -> str:
    step = verdict.step or "step"
    table = verdict.to_frame().rename(columns={"trials": "sends", "needed_more": "more sends needed"})
    table["interval"] = [f"{_percent(lo)} – {_percent(hi)}" for lo, hi in zip(table.pop("ci_low"), table.pop("ci_high"), strict=True)]
    return (f"<h3>{html.escape(step)}</h3>"
            f'<p class="verdict {html.escape(verdict.state)}">{html.escape(verdict.text)}</p>'
            f"<p class=\"meta\">{html.escape(verdict.metric)}, {verdict.confidence:.0%} Wilson intervals; "
            f"planned {verdict.planned_n:,} sends per variant; each comparison at alpha {verdict.alpha:.3g}</p>"
            + _img(ab_chart(verdict), f"A/B test of {step}") + html_table(table))


def _img(png: bytes, alt: str) -> str:
    return f'<img src="{png_data_uri(png)}" alt="{html.escape(alt)}" width="800" height="400">'


def _is_rate(label: str) -> bool:
    return label == "rate" or label.endswith("_rate") or label in ("ci_low", "ci_high")


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT


def _percent(value: object) -> str:
    return MISSING if _missing(value) else f"{float(value):.1%}"  # type: ignore[arg-type]


def _money(value: object) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, int | float):
        if abs(value) >= 1 or value == 0:
            return f"${value:,.2f}"
        digits = f"{value:.4f}".rstrip("0")  # below a dollar, cents would hide most per-message costs: up to 4 decimals
        return "$" + digits + "0" * max(0, 2 - len(digits.partition(".")[2]))
    return str(value)


def _number(value: object) -> str:
    if _missing(value):
        return MISSING
    if isinstance(value, bool):
        return str(value)
    if pd.api.types.is_integer(value):  # Python and numpy integers alike
        return f"{int(value):,}"
    if pd.api.types.is_float(value):
        return f"{float(value):,.2f}"
    return str(value)


def _plain(text: object) -> str:
    """Text safe for a terminal: control characters (escape sequences, carriage returns) become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in str(text))
