"""Markdown tables for Dagster metadata, without extra dependencies."""

from __future__ import annotations

import pandas as pd


def _cell(value: object, width: int) -> str:
    text = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    text = text.replace("|", "\\|").replace("\n", "<br>")
    return text if len(text) <= width else text[: width - 1] + "…"


def md_table(frame: pd.DataFrame, max_rows: int = 50, width: int = 400) -> str:
    """A GitHub-flavoured Markdown table of the first `max_rows` rows."""
    if frame.empty:
        return "_none_"
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.head(max_rows).itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, width) for v in row) + " |")
    if len(frame) > max_rows:
        lines.append(f"\n_{len(frame) - max_rows} more rows not shown_")
    return "\n".join(lines)
