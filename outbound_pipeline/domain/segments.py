"""Segments: which leads of a campaign's lists it targets, as conditions that must all hold.

A condition reads a lead field or custom attribute (`{field: deal_stage, op: in, value: [proposal, discovery]}`)
or the lead's history with us (`{op: replied_within, value: 30d}`). Conditions are checked when the campaign
file is read, so a typo in an operator or a value of the wrong kind is reported with its place in the file
rather than quietly selecting nobody.

Values are compared as numbers when both sides read as numbers, as ISO dates (`2026-03-15`, optionally with a
time) when both read as dates, and otherwise as text ignoring case. Ordered comparisons (`gt`, `gte`, `lt`,
`lte`) only ever compare numbers or dates: a lead whose value is neither, or of the other kind, does not match.
`store/segments.py` compiles the same rules to SQL; `fields_hold` applies them in memory.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FIELD_OPS = ("eq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "exists")
ENGAGEMENT_OPS = ("replied_within", "opened_within", "not_contacted_within", "never_contacted")
OPS = FIELD_OPS + ENGAGEMENT_OPS
ORDERED_OPS = ("gt", "gte", "lt", "lte")
LIST_OPS = ("in", "not_in")

# Fields read from the lead's own columns; `name` is first and last name together. Any other field is a custom attribute.
LEAD_COLUMNS = ("first_name", "last_name", "email", "phone", "company", "role", "country", "timezone", "owner_email")
FULL_NAME = "name"
CUSTOM_PREFIX = "custom."  # `custom.role` reads the custom attribute even where a lead column has the same name

# The exact shapes counted as numbers and dates; store/segments.py uses the same patterns in SQL.
NUMBER_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?)?"
_NUMBER = re.compile(NUMBER_PATTERN)
_DATE = re.compile(DATE_PATTERN)
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FIELD_PART = re.compile(r"[^a-z0-9]+")

Scalar = str | int | float | date


def as_number(value: object) -> float | None:
    """The value as a number when it is one or is written as one (`42`, `-3.5`, `1e3`); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value == value else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value.strip())
    return None


def as_datetime(value: object) -> datetime | None:
    """The value as a naive UTC datetime when it is a date or written as an ISO date (`2026-03-15`, `2026-03-15 10:30`); else None."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:  # 2026-02-30 has the shape of a date but is none
            return None
    return None


def as_text(value: object) -> str:
    """The value as comparable text: stripped; '' for None and NaN; dates in ISO form."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def same_value(left: object, right: object) -> bool:
    """Equality under the segment rules: as numbers, else as dates, else as text ignoring case; an empty side never matches."""
    if as_text(left) == "" or as_text(right) == "":
        return False
    numbers = as_number(left), as_number(right)
    if numbers[0] is not None and numbers[1] is not None:
        return numbers[0] == numbers[1]
    dates = as_datetime(left), as_datetime(right)
    if dates[0] is not None and dates[1] is not None:
        return dates[0] == dates[1]
    return as_text(left).lower() == as_text(right).lower()


def compare(left: object, right: object) -> int | None:
    """-1, 0 or 1 when both sides are numbers or both are dates; None when they cannot be ordered."""
    ln, rn = as_number(left), as_number(right)
    if ln is not None and rn is not None:
        return (ln > rn) - (ln < rn)
    ld, rd = as_datetime(left), as_datetime(right)
    if ld is not None and rd is not None:
        return (ld > rd) - (ld < rd)
    return None


def parse_duration(text: str) -> timedelta:
    """'30d' -> 30 days; units m (minutes), h (hours), d (days), w (weeks)."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 90m or 2w")
    return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})


def normalise_field(name: str) -> str:
    """A field as the importer stores column names: lower case, `_` for other characters; `contact.` dropped, `custom.` kept."""
    text = name.strip().lower()
    text = text.removeprefix("contact.")
    prefix = CUSTOM_PREFIX if text.startswith(CUSTOM_PREFIX) else ""
    return prefix + _FIELD_PART.sub("_", text.removeprefix(prefix)).strip("_")


def _is_scalar(value: object) -> bool:
    return isinstance(value, str | int | float | date) and not isinstance(value, bool)


class SegmentCondition(BaseModel):
    """One condition: `field op value` on a lead field or custom attribute, or an engagement op on the lead's history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str | None = None
    op: str
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, op: Any) -> str:
        name = str(op).strip().lower()
        if name not in OPS:
            raise ValueError(f"unknown op {op!r}: use one of {', '.join(OPS)}")
        return name

    @field_validator("field")
    @classmethod
    def _field(cls, field: str | None) -> str | None:
        if field is None:
            return None
        name = normalise_field(field)
        if name in ("", CUSTOM_PREFIX):
            raise ValueError(f"field {field!r} names no column: use a lead column such as role or a custom attribute such as deal_stage")
        return name

    @model_validator(mode="after")
    def _shape(self) -> SegmentCondition:
        op, value = self.op, self.value
        if op in ENGAGEMENT_OPS:
            if self.field is not None:
                raise ValueError(f"op {op!r} is about the lead's history with us and takes no field; got field {self.field!r}")
            if op == "never_contacted":
                if value not in (None, True):
                    raise ValueError(f"op 'never_contacted' takes no value; got {value!r}")
                return self
            try:
                parse_duration(value)
            except ValueError:
                raise ValueError(f"op {op!r} needs a duration such as 30d, 12h, 90m or 2w; got {value!r}") from None
            return self
        if self.field is None:
            raise ValueError(f"op {op!r} needs a field: a lead column such as role, or a custom attribute such as deal_stage")
        if op == "exists":
            if not isinstance(value, bool) and value is not None:
                raise ValueError(f"op 'exists' takes value true or false (no value means true); got {value!r}")
            return self
        if op in LIST_OPS:
            if not isinstance(value, list | tuple) or not value:
                raise ValueError(f"op {op!r} needs a list of values, e.g. value: [proposal, discovery]; got {value!r}")
            bad = [v for v in value if not _is_scalar(v) or as_text(v) == ""]
            if bad:
                raise ValueError(f"op {op!r}: each value must be a non-empty text, number or date; got {bad!r}")
            return self
        if isinstance(value, list | tuple | dict):
            hint = "; for several values use op 'in'" if op == "eq" else ""
            raise ValueError(f"op {op!r} needs a single value, got {value!r}{hint}")
        if not _is_scalar(value) or as_text(value) == "":
            raise ValueError(f"op {op!r} needs a non-empty text, number or date as value (use op 'exists' for empty values); got {value!r}")
        if op in ORDERED_OPS and as_number(value) is None and as_datetime(value) is None:
            raise ValueError(f"op {op!r} compares numbers or dates (YYYY-MM-DD, optionally with a time); {value!r} is neither")
        return self

    @property
    def is_engagement(self) -> bool:
        return self.op in ENGAGEMENT_OPS

    @property
    def values(self) -> list[Scalar]:
        """The condition's values as a list (one for single-value ops, none for exists and engagement ops)."""
        if self.op in LIST_OPS:
            return list(self.value)
        return [] if self.value is None or isinstance(self.value, bool) else [self.value]

    @property
    def expected(self) -> bool:
        """For `exists`: whether the field must have a value (true) or must be empty (false)."""
        return self.value is not False

    @property
    def lookback(self) -> timedelta:
        """For the `*_within` ops: how far back from now the history is read."""
        return parse_duration(self.value)


class Segment(BaseModel):
    """Conditions that must all hold; no conditions selects every lead of the campaign's lists.

    Written in a campaign file either as a list of conditions or as `{conditions: [...]}`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    conditions: list[SegmentCondition] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, value: Any) -> Any:
        return {"conditions": value} if isinstance(value, list) else value

    @property
    def field_conditions(self) -> list[SegmentCondition]:
        return [c for c in self.conditions if not c.is_engagement]

    @property
    def engagement_conditions(self) -> list[SegmentCondition]:
        return [c for c in self.conditions if c.is_engagement]


def segment_from_filter(filters: Mapping[str, object]) -> Segment:
    """The segment equal to an `audience.filter` of `field: value | [values]`, so older campaign files keep their audience."""
    conditions = [
        {"field": name, "op": "in", "value": list(wanted)} if isinstance(wanted, list | tuple) else {"field": name, "op": "eq", "value": wanted}
        for name, wanted in filters.items()
    ]
    return Segment.model_validate({"conditions": conditions})


def lead_value(field: str, lead: Mapping[str, object], custom: Mapping[str, object]) -> object:
    """The value a condition's (normalised) field reads: a lead column, the full name, or a custom attribute."""
    if field.startswith(CUSTOM_PREFIX):
        return custom.get(field.removeprefix(CUSTOM_PREFIX))
    if field == FULL_NAME:
        return " ".join(t for t in (as_text(lead.get("first_name")), as_text(lead.get("last_name"))) if t)
    if field in LEAD_COLUMNS:
        return lead.get(field)
    return custom.get(field)


def condition_holds(condition: SegmentCondition, value: object) -> bool:
    """Whether a field condition holds for a lead whose field has `value` (None when absent)."""
    op = condition.op
    if op == "exists":
        return (as_text(value) != "") == condition.expected
    if op == "eq":
        return same_value(value, condition.value)
    if op == "in":
        return any(same_value(value, v) for v in condition.values)
    if op == "not_in":
        return not any(same_value(value, v) for v in condition.values)
    if op == "contains":
        text = as_text(value).lower()
        return text != "" and as_text(condition.value).lower() in text
    if op in ORDERED_OPS:
        order = compare(value, condition.value)
        if order is None:
            return False
        return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]
    raise ValueError(f"op {op!r} reads the lead's history, not a field")


def fields_hold(segment: Segment, lead: Mapping[str, object], custom: Mapping[str, object]) -> bool:
    """Whether every field condition holds for one lead; engagement conditions need the send history and are not checked here."""
    return all(condition_holds(c, lead_value(c.field or "", lead, custom)) for c in segment.field_conditions)
