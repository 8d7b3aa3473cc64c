"""The forecast before launch: channels per lead, messages per step under history, days under windows and limits, cost."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from outbound_pipeline.domain.limits import OrgLimits
from outbound_pipeline.domain.spec import CampaignSpec
from outbound_pipeline.engine.forecast import forecast, sending_days

SPEC = CampaignSpec.model_validate({
    "name": "f", "type": "drip", "goal": "Book a call with them.", "audience": {"lead_list": "x.csv"},
    "sending_window": {"start": "09:00", "end": "10:00", "days": ["mon", "tue", "wed", "thu", "fri"]},
    "steps": [{"name": "one", "intent": "introduce", "channels": ["email", "whatsapp"]},
              {"name": "two", "intent": "nudge", "delay": "2d", "channels": ["whatsapp", "email"]}],
})
AUDIENCE = pd.DataFrame({"email": ["a@x.io", "b@x.io", None, None], "phone": [None, "+34600000001", "+34600000002", None]})
START = datetime(2026, 3, 2, 9)


def test_channels_messages_days_and_cost():
    limits = OrgLimits(daily=None, per_second={"email": 1.0, "whatsapp": 1.0, "sms": 1.0})
    found = forecast(SPEC, AUDIENCE, START, limits, continuation=0.5, unit_costs={"email": 0.001, "whatsapp": 0.01, "research": 0.1})
    assert found.audience == 4 and found.unreachable == 1
    assert found.reached_by_channel == {"email": 2, "whatsapp": 1}
    steps = found.steps.set_index(["step", "channel"])["messages"].to_dict()
    assert steps == {("one", "email"): 2.0, ("one", "whatsapp"): 1.0, ("two", "whatsapp"): 1.0, ("two", "email"): 0.5}
    assert found.messages == pytest.approx(4.5)
    assert found.cost_breakdown["sending"] == pytest.approx(2.5 * 0.001 + 2 * 0.01)
    assert found.cost_breakdown["research"] == pytest.approx(0.4)
    # the delay, plus each step's busiest channel at one a second inside a five-day window: 2 s, then 1 s
    assert found.days_to_finish == pytest.approx(2 + (2 + 1) / 3600 * 7 / 5)
    assert found.assumptions == []


def test_without_history_everyone_goes_on_and_the_forecast_says_so():
    found = forecast(SPEC, AUDIENCE, START, OrgLimits(), continuation=None, unit_costs={})
    assert found.messages == 6 and "upper bound" in found.assumptions[0]


def test_sending_days_follow_the_window_the_rate_and_the_daily_limit():
    assert sending_days(3600 * 5, 1.0, SPEC, None) == pytest.approx(5 * 7 / 5)  # five open hours = five weekdays = a week
    assert sending_days(3600, 1.0, SPEC, 360) == pytest.approx(10 * 7 / 5)  # the daily limit binds: 10 open days
    assert sending_days(0, 1.0, SPEC, None) == 0.0
