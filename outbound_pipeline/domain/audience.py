"""Who of a lead list a campaign targets: its `audience.filter`."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd


def audience_mask(leads: pd.DataFrame, filters: dict[str, Any]) -> pd.Series:
    """Rows matching every `field: value | [values]` filter (case-insensitive); fields are lead columns or custom variables."""
    mask = pd.Series(True, index=leads.index)
    if not filters:
        return mask
    custom = leads["custom_vars"].map(lambda text: json.loads(text or "{}"))
    for field, wanted in filters.items():
        values = {str(v).lower() for v in (wanted if isinstance(wanted, list) else [wanted])}
        column = leads[field] if field in leads.columns else custom.map(lambda c, f=field: c.get(f))
        mask &= column.astype(str).str.lower().isin(values)
    return mask
