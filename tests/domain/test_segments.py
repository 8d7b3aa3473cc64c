"""Segments: conditions validated with messages that say what to write instead, and the comparison rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError

from outbound_pipeline.domain.segments import (
    Segment,
    SegmentCondition,
    as_datetime,
    as_number,
    compare,
    condition_holds,
    fields_hold,
    parse_duration,
    same_value,
    segment_from_filter,
)


def condition(**fields: object) -> SegmentCondition:
    return SegmentCondition.model_validate(fields)


def test_a_segment_is_a_list_of_conditions() -> None:
    segment = Segment.model_validate([
        {"field": "Deal Stage", "op": "in", "value": ["proposal", "discovery"]},
        {"field": "contact.country", "op": "eq", "value": "ES"},
        {"field": "custom.role", "op": "exists"},
        {"op": "replied_within", "value": "30d"},
        {"op": "never_contacted"},
    ])
    assert [(c.field, c.op) for c in segment.conditions] == [
        ("deal_stage", "in"), ("country", "eq"), ("custom.role", "exists"), (None, "replied_within"), (None, "never_contacted")]
    assert len(segment.field_conditions) == 3 and len(segment.engagement_conditions) == 2
    assert Segment.model_validate({"conditions": []}).conditions == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"field": "role", "op": "equals", "value": "COO"}, "unknown op 'equals': use one of eq, in, not_in"),
    ({"field": "role", "op": "in", "value": "COO"}, "op 'in' needs a list of values"),
    ({"field": "role", "op": "not_in", "value": []}, "op 'not_in' needs a list of values"),
    ({"field": "role", "op": "in", "value": ["COO", ["x"]]}, "each value must be a non-empty text, number or date"),
    ({"field": "role", "op": "eq", "value": ["COO", "CEO"]}, "for several values use op 'in'"),
    ({"field": "role", "op": "eq"}, "needs a non-empty text, number or date"),
    ({"field": "role", "op": "eq", "value": ""}, "use op 'exists' for empty values"),
    ({"field": "employees", "op": "gt", "value": "many"}, "op 'gt' compares numbers or dates"),
    ({"field": "renewal", "op": "lte", "value": "2026-02-30"}, "op 'lte' compares numbers or dates"),
    ({"field": "employees", "op": "gte", "value": True}, "needs a non-empty text, number or date"),
    ({"field": "notes", "op": "contains", "value": {"a": 1}}, "needs a single value"),
    ({"field": "email", "op": "exists", "value": "maybe"}, "op 'exists' takes value true or false"),
    ({"op": "eq", "value": "COO"}, "op 'eq' needs a field"),
    ({"field": "  !! ", "op": "eq", "value": "x"}, "names no column"),
    ({"op": "replied_within", "value": "3 weeks"}, "needs a duration such as 30d, 12h"),
    ({"op": "opened_within"}, "needs a duration"),
    ({"field": "email", "op": "opened_within", "value": "7d"}, "takes no field"),
    ({"op": "never_contacted", "value": "30d"}, "op 'never_contacted' takes no value"),
    ({"field": "role", "op": "eq", "value": "COO", "values": ["x"]}, "Extra inputs are not permitted"),
])
def test_invalid_conditions_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        condition(**fields)


def test_errors_name_the_condition_position() -> None:
    with pytest.raises(ValidationError) as caught:
        Segment.model_validate([{"field": "role", "op": "eq", "value": "COO"}, {"field": "x", "op": "between", "value": 1}])
    assert caught.value.errors()[0]["loc"][:2] == ("conditions", 1)


def test_valid_values_of_each_kind() -> None:
    assert condition(field="employees", op="gt", value=50).values == [50]
    assert condition(field="employees", op="gt", value="50.5").values == ["50.5"]
    assert condition(field="renewal", op="lt", value=date(2026, 3, 1)).values == [date(2026, 3, 1)]
    assert condition(field="renewal", op="lt", value="2026-03-01 10:30").values == ["2026-03-01 10:30"]
    assert condition(field="email", op="exists").expected is True
    assert condition(field="email", op="exists", value=False).expected is False
    assert condition(op="not_contacted_within", value="12h").lookback == timedelta(hours=12)
    assert condition(op="NEVER_CONTACTED", value=True).op == "never_contacted"


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90m", "12h", "30d", "2w", " 1 d ")] == [
        timedelta(minutes=90), timedelta(hours=12), timedelta(days=30), timedelta(weeks=2), timedelta(days=1)]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("3bd")


def test_numbers_and_dates_are_recognised_by_their_written_form() -> None:
    assert [as_number(v) for v in ("42", " -3.5 ", "1e3", ".5", 7, True, "1,5", "inf", "0x10", "1_000")] == [
        42.0, -3.5, 1000.0, 0.5, 7.0, None, None, None, None, None]
    assert as_datetime("2026-03-15") == datetime(2026, 3, 15)
    assert as_datetime("2026-03-15T10:30") == datetime(2026, 3, 15, 10, 30)
    assert [as_datetime(v) for v in ("20260315", "2026-02-30", "2026-03-15 24:00", "15/03/2026")] == [None, None, None, None]


def test_comparison_rules() -> None:
    assert same_value("10.0", 10) and same_value("007", "7")
    assert same_value("2026-03-15", date(2026, 3, 15)) and same_value("2026-03-15T00:00", "2026-03-15")
    assert same_value("Proposal", "proposal") and not same_value("", "") and not same_value(None, "x")
    assert compare("9", "10") == -1  # as numbers, not as text
    assert compare("2026-03-02", "2026-03-10") == -1
    assert compare("abc", "10") is None and compare("2026-03-02", 5) is None


def test_field_conditions_in_memory() -> None:
    lead = {"first_name": "Mary Ann", "last_name": "de la Cruz", "role": "COO", "email": None}
    custom = {"employees": "120", "renewal": "2026-04-01", "deal_stage": "Proposal", "role": "ignored"}
    holds: list[dict[str, object]] = [
        {"field": "name", "op": "eq", "value": "mary ann DE LA CRUZ"},
        {"field": "role", "op": "in", "value": ["ceo", "coo"]},
        {"field": "custom.role", "op": "eq", "value": "ignored"},
        {"field": "deal_stage", "op": "not_in", "value": ["lead"]},
        {"field": "employees", "op": "gte", "value": 120},
        {"field": "renewal", "op": "gt", "value": "2026-03-15"},
        {"field": "deal_stage", "op": "contains", "value": "POS"},
        {"field": "email", "op": "exists", "value": False},
        {"field": "missing_column", "op": "not_in", "value": ["x"]},
    ]
    for fields in holds:
        c = condition(**fields)
        assert fields_hold(Segment(conditions=[c]), lead, custom), fields
    fails: list[dict[str, object]] = [
        {"field": "employees", "op": "lt", "value": "2026-01-01"},  # a number is not ordered against a date
        {"field": "deal_stage", "op": "gt", "value": 3},
        {"field": "email", "op": "exists"},
        {"field": "missing_column", "op": "eq", "value": "x"},
        {"field": "missing_column", "op": "contains", "value": "x"},
    ]
    for fields in fails:
        assert not fields_hold(Segment(conditions=[condition(**fields)]), lead, custom), fields
    with pytest.raises(ValueError, match="history"):
        condition_holds(condition(op="never_contacted"), None)


def test_an_audience_filter_becomes_a_segment() -> None:
    segment = segment_from_filter({"role": ["Head of Operations", "COO"], "country": "ES"})
    assert [(c.field, c.op, c.value) for c in segment.conditions] == [
        ("role", "in", ["Head of Operations", "COO"]), ("country", "eq", "ES")]


def test_a_segment_survives_a_json_round_trip() -> None:
    segment = Segment.model_validate([{"field": "renewal", "op": "lt", "value": date(2026, 3, 1)}, {"op": "opened_within", "value": "7d"}])
    again = Segment.model_validate_json(segment.model_dump_json())
    lead: dict[str, object] = {}
    assert fields_hold(again, lead, {"renewal": "2026-02-01"}) and not fields_hold(again, lead, {"renewal": "2026-03-02"})
