"""Template variables checked against the audience before a campaign runs: a `{{variable}}` no contact can fill is a typo
or a missing column, so `outbound campaign create` warns about it and a launch is refused with the step and variable named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from outbound_pipeline.domain.lead_list import LeadListError, import_lead_list
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.domain.templates import unfillable_variables
from outbound_pipeline.store import segments


@dataclass(frozen=True)
class VariableCheck:
    """`problems`: one line per step and variable no contact can fill; `checked`: whether any list (file or imported) was read."""

    problems: list[str]
    checked: bool


def audience_columns(con: duckdb.DuckDBPyConnection | None, spec: CampaignSpec, lead_list: Path | None) -> tuple[set[str], bool]:
    """Custom columns with a value among the campaign's contacts: its imported lists, and its lead_list file when readable."""
    columns: set[str] = set()
    checked = False
    if con is not None:
        names = spec.audience.list_names
        if segments.existing_lists(con, names):
            columns |= set(segments.custom_columns(con, names))
            checked = True
    if lead_list is not None and lead_list.is_file():
        try:
            leads = import_lead_list(lead_list, spec.audience.default_region).leads
        except LeadListError:  # an unreadable list is refused by the launch itself, with its own reason
            return columns, checked
        for raw in leads["custom_vars"].dropna() if not leads.empty else []:
            columns |= set(json.loads(raw))
        checked = True
    return columns, checked


def check_variables(con: duckdb.DuckDBPyConnection | None, spec: CampaignSpec, lead_list: Path | None) -> VariableCheck:
    """The template variables of `spec` that no contact of its audience can fill (nothing to report when no list can be read)."""
    columns, checked = audience_columns(con, spec, lead_list)
    return VariableCheck(unfillable_variables(spec.steps, spec.step_names, columns) if checked else [], checked)
