"""The offline composer writes proper sentences around its snippets."""

from __future__ import annotations

from outbound_pipeline.providers.base import ComposeRequest, LeadProfile, Snippet, StepBrief
from outbound_pipeline.providers.compose_offline import RuleComposer, as_clause


def test_names_keep_their_capital_and_common_words_lose_it() -> None:
    assert as_clause("Harbor Freight opened a hub") == "Harbor Freight opened a hub"
    assert as_clause("DHL cut routes") == "DHL cut routes"
    assert as_clause("The company opened a hub") == "the company opened a hub"
    assert as_clause("Its fleet grew") == "its fleet grew"


def test_a_draft_opens_with_the_company_name_as_written() -> None:
    lead = LeadProfile(lead_id="l1", first_name="Ana", last_name="Lopez", company="Harbor Freight", role="COO", email="a@h.example")
    snippet = Snippet("s1", "https://news.example/h", "Harbor Freight expands", "Harbor Freight is opening three depots.")
    draft = RuleComposer().compose(ComposeRequest(campaign_id="c", goal="Book a call", voice="", lead=lead,
                                                  step=StepBrief(touch=1, intent="introduce", channels=("email",)),
                                                  snippets=[snippet], available_channels=("email",)))
    assert "Harbor Freight is opening three depots" in draft.body and "harbor Freight" not in draft.body
