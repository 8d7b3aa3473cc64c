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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import duckdb
import pandas as pd
from tabulate import tabulate

from outbound_pipeline.domain.experiments import ABVerdict, verdict
from outbound_pipeline.domain.metrics import ALL
from outbound_pipeline.engine.charts import ab_chart, funnel_chart, funnel_frame, markdown_image, png_data_uri, rates_over_time_chart
from outbound_pipeline.store.calls import read_call_metrics
from outbound_pipeline.store.metrics import cost_breakdown, daily_history, read_alerts, rollup

# The campaign's funnel: messages, then leads (labels say which), as the charts and the report draw it.
FUNNEL_LABELS = {"sent": "messages sent", "delivered": "messages delivered", "leads_reached": "leads reached",
                 "replied": "leads replied", "replied_to_cta": "accepted the CTA"}
MAX_ALERTS = 20  # the newest alerts a report lists
# The rates drawn over time, and the summary's columns (counts, then rates as the product defines them, then money).
TREND_RATES = ("delivery_rate", "open_rate", "human_open_rate", "reply_rate", "opt_out_rate", "bounce_rate")
SUMMARY_COLUMNS = ("breakdown", "sent", "delivered", "leads_reached", "replied", "replied_to_cta", "opted_out", "delivery_rate",
                   "open_rate", "human_open_rate", "click_rate", "reply_rate", "reply_to_cta_rate", "opt_out_rate", "bounce_rate", "conversion_rate",
                   "response_median_h", "response_p90_h", "cost_usd", "cost_per_reply_usd", "cost_per_conversion_usd")


@dataclass(frozen=True)
class CampaignMetrics:
    """Everything the report and the metrics metadata show about one campaign, as of one moment."""

    campaign_id: str
    rows: pd.DataFrame  # every breakdown (campaign, touch, channel, variant) from `store.metrics.rollup`
    daily: pd.DataFrame  # the whole campaign's row per day
    verdicts: tuple[ABVerdict, ...]
    cost: dict[str, Decimal]
    alerts: tuple[str, ...] = ()  # the alerts raised to the owner, newest first, in words
    calls: pd.DataFrame | None = None  # a voice campaign's call outcomes (`call_metrics`), when it placed calls

    @property
    def whole(self) -> pd.Series | None:
        hit = self.rows[(self.rows["touch"] == 0) & (self.rows["channel"] == ALL)]
        return hit.iloc[0] if not hit.empty else None

    def summary(self) -> pd.DataFrame:
        """Campaign, each step, each channel: one row each, rates as proportions, response times in hours."""
        shown = self.rows[self.rows["variant"] == ALL].copy()
        shown["breakdown"] = [("campaign" if t == 0 else f"step {t}") if c == ALL else f"channel {c}"
                              for t, c in zip(shown["touch"], shown["channel"], strict=True)]
        for col in ("response_median", "response_p90"):
            shown[f"{col}_h"] = shown[f"{col}_s"] / 3600
        shown["order"] = [0 if c == ALL and t == 0 else (1 if c == ALL else 2) for t, c in zip(shown["touch"], shown["channel"], strict=True)]
        shown = shown.sort_values(["order", "touch", "channel"])
        return shown[[c for c in SUMMARY_COLUMNS if c in shown.columns]].reset_index(drop=True)

    def funnel(self) -> pd.DataFrame:
        whole = self.whole
        frame = funnel_frame({str(k): v for k, v in whole.items()} if whole is not None else {}, tuple(FUNNEL_LABELS))
        return frame.assign(stage=frame["stage"].map(FUNNEL_LABELS))

    def trend(self) -> pd.DataFrame:
        columns = ["day", *[c for c in TREND_RATES if c in self.daily.columns]]
        return self.daily[columns] if not self.daily.empty else pd.DataFrame(columns=columns)


def ab_verdicts(rows: pd.DataFrame, campaign_id: str) -> tuple[ABVerdict, ...]:
    """One verdict per step with variants: leads who replied out of leads reached, per variant."""
    variants = rows[(rows["campaign_id"] == campaign_id) & (rows["variant"] != ALL)]
    out = []
    for touch, group in variants.groupby("touch", sort=True):
        if group["variant"].nunique() < 2:
            continue
        counts = pd.DataFrame({"variant": group["variant"], "trials": group["leads_reached"].astype(int), "successes": group["replied"].astype(int)})
        out.append(verdict(counts, metric="reply rate", step=f"step {touch}"))
    return tuple(out)


def load_campaign(con: duckdb.DuckDBPyConnection, campaign_id: str, now: datetime) -> CampaignMetrics:
    """The campaign's metrics as of `now`: breakdowns, daily history, A/B verdicts and cost."""
    rows = rollup(con, now)
    rows = rows[rows["campaign_id"] == campaign_id].reset_index(drop=True)
    calls = _call_outcomes(con, campaign_id)
    raised = read_alerts(con, campaign_id)
    raised = raised[raised["raised_at"] <= now]
    return CampaignMetrics(campaign_id=campaign_id, rows=rows, daily=daily_history(con, campaign_id, now),
                           verdicts=ab_verdicts(rows, campaign_id), cost=cost_breakdown(con, campaign_id, now),
                           alerts=tuple(f"{at:%Y-%m-%d %H:%M}: {message}" for at, message in zip(raised["raised_at"], raised["message"], strict=True)),
                           calls=calls)


def _call_outcomes(con: duckdb.DuckDBPyConnection, campaign_id: str) -> pd.DataFrame | None:
    """The campaign's call outcomes, or None when it placed no call (or the file predates voice campaigns)."""
    try:
        calls = read_call_metrics(con, campaign_id)
    except duckdb.CatalogException:
        return None
    return calls.drop(columns=["campaign_id", "updated_at"], errors="ignore") if not calls.empty else None


def metrics_markdown(campaign: CampaignMetrics) -> str:
    """Markdown for Dagster metadata: the funnel and rates-over-time charts (embedded PNG) and the summary with percentages."""
    name = campaign.campaign_id
    parts = [f"### {name}",
             markdown_image(funnel_chart(campaign.funnel(), title=f"Funnel: {name}"), f"Funnel of {name}"),
             markdown_image(rates_over_time_chart(campaign.trend(), title=f"Rates over time: {name}"), f"Daily rates of {name}"),
             markdown_table(campaign.summary())]
    parts += [f"- A/B {v.step}: {v.text}" for v in campaign.verdicts]
    parts += [f"- alert {text}" for text in campaign.alerts[:MAX_ALERTS]]
    return "\n\n".join(parts)


def markdown_table(frame: pd.DataFrame) -> str:
    """`formatted(frame)` as a Markdown table (rates in percent, money in dollars)."""
    return formatted(frame).to_markdown(index=False) if not frame.empty else "_no metrics yet_"


def campaign_report(campaign: CampaignMetrics, generated_at: str | None = None) -> str:
    """The self-contained HTML report of one campaign."""
    return render_html_report(campaign.campaign_id, campaign.summary(), campaign.funnel(), campaign.trend(), campaign.verdicts,
                              campaign.cost, generated_at=generated_at, alerts=campaign.alerts[:MAX_ALERTS], calls=campaign.calls)


def campaign_terminal_summary(campaign: CampaignMetrics) -> str:
    """What `outbound report` prints: the whole campaign and its steps and channels, verdicts, cost."""
    summary = campaign.summary()
    keep = ["breakdown", "sent", "delivered", "leads_reached", "replied", "delivery_rate", "open_rate", "human_open_rate", "reply_rate",
            "reply_to_cta_rate",
            "opt_out_rate", "bounce_rate", "cost_usd"]
    text = terminal_summary(campaign.campaign_id, summary[[c for c in keep if c in summary.columns]], campaign.verdicts, campaign.cost,
                            alerts=campaign.alerts[:MAX_ALERTS])
    if campaign.calls is not None:
        row = campaign.calls.iloc[0]
        text += (f"\nVoice calls: {_number(row['calls_placed'])} placed to {_number(row['contacts'])} contacts, "
                 f"{_number(row['answered_human'])} answered by a person, {_number(row['voicemail'])} voicemail, "
                 f"{_number(row['no_answer'])} no answer, {_number(row['failed'])} failed; outcomes {_plain(row['outcomes'])}\n")
    return text

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
    alerts: Sequence[str] = (),
    calls: pd.DataFrame | None = None,
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
        "<section><h2>Voice calls</h2>" + html_table(calls) + "</section>" if calls is not None and not calls.empty else "",
        "<section><h2>Alerts</h2>" + ("<ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in alerts) + "</ul>" if alerts
                                      else "<p>No alert was raised.</p>") + "</section>",
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


def terminal_summary(campaign_id: str, summary: pd.DataFrame, verdicts: Sequence[ABVerdict] = (), cost: Mapping[str, object] | None = None,
                     alerts: Sequence[str] = ()) -> str:
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
    if alerts:
        lines += ["", "Alerts:"] + [f"  {_plain(a)}" for a in alerts]
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
        elif label.startswith("cost") or label.endswith("_usd"):
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
    if isinstance(value, Decimal):
        value = float(value)
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
