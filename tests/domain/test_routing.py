"""Pure checks: branch graph validation and A/B assignment."""

from __future__ import annotations

import pandas as pd
import pytest

from outbound_pipeline.domain.loader import CampaignSpecError, parse_campaign
from outbound_pipeline.domain.routing import assign_variants
from outbound_pipeline.domain.spec import Variant

HEAD = """
name: x
goal: Book a call with operations leaders
type: {type}
audience: {{lead_list: a.csv}}
steps:
"""


def spec_text(steps: str, type_: str = "drip") -> str:
    return HEAD.format(type=type_) + steps


def test_cycle_is_rejected_with_the_step_named():
    steps = """
  - {name: intro, intent: introduce, next: [{when: opened_no_reply, goto: nudge}, {goto: wrap}]}
  - {name: nudge, delay: 2d, intent: follow_up, next: [{goto: wrap}]}
  - {name: wrap, delay: 2d, intent: last_touch, next: [{when: {replied_intent: question}, goto: nudge}]}
"""
    with pytest.raises(CampaignSpecError, match=r"cycle: nudge -> wrap -> nudge"):
        parse_campaign(spec_text(steps))


def test_dangling_step_reference_is_rejected():
    steps = "  - {name: intro, intent: introduce, next: [{when: not_delivered, goto: sms_retry}]}\n"
    with pytest.raises(CampaignSpecError, match="step 'intro' branches to 'sms_retry', which is not a step"):
        parse_campaign(spec_text(steps))


def test_followup_refuses_reply_branches_and_unknown_conditions():
    steps = """
  - {name: intro, intent: introduce, next: [{when: {replied_intent: question}, goto: faq}]}
  - {name: faq, delay: 1h, intent: answer, final: true}
"""
    with pytest.raises(CampaignSpecError, match="followup campaign drops a lead on reply"):
        parse_campaign(spec_text(steps, "followup"))
    with pytest.raises(CampaignSpecError, match="unknown condition 'clicked'"):
        parse_campaign(spec_text("  - {name: a, intent: b, next: [{when: clicked, goto: a}]}\n"))


def test_valid_branch_graph_lists_successors_in_order():
    steps = """
  - {name: intro, intent: introduce, next: [{when: {replied_intent: question}, goto: faq}, {when: opened_no_reply, goto: nudge}]}
  - {name: nudge, delay: 2d, intent: follow_up, final: true}
  - {name: faq, delay: 1h, intent: answer, final: true}
"""
    spec = parse_campaign(spec_text(steps))
    assert [t for _, t in spec.successors(1)] == [3, 2]
    assert spec.successors(2) == [] and spec.successors(3) == []


def test_ab_split_within_tolerance_on_10000_leads_and_stable():
    leads = pd.Series([f"lead_{i:05d}" for i in range(10_000)])
    variants = [Variant(name="a", weight=70, tone="direct"), Variant(name="b", weight=30, tone="warm")]
    first = assign_variants("spring", "intro", leads, variants)
    shares = first.value_counts(normalize=True)
    assert abs(shares["a"] - 0.70) < 0.02 and abs(shares["b"] - 0.30) < 0.02
    assert first.equals(assign_variants("spring", "intro", leads, variants))  # same input, same assignment
    other_step = assign_variants("spring", "nudge", leads, variants)
    assert (other_step != first).mean() > 0.3  # each step draws independently
    equal = assign_variants("spring", "intro", leads, [Variant(name="a"), Variant(name="b"), Variant(name="c")]).value_counts(normalize=True)
    assert (equal - 1 / 3).abs().max() < 0.02
