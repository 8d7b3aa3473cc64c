"""Research of a campaign's recipients: the provider called per lead, its answers as `research_snippets` rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from outbound_pipeline.engine.following import HAND_OVER_EVERY_S
from outbound_pipeline.providers.base import LeadProfile, ResearchProvider, ResearchResult
from outbound_pipeline.providers.concurrency import ProviderLimit, map_handing_over

MIN_SNIPPETS = 3  # fewer than this and the lead is reported thin: its drafts cite what there is
MAX_SNIPPETS = 5  # the best-ranked snippets kept per lead


def research_leads(provider: ResearchProvider, leads: list[LeadProfile], goal: str, max_concurrency: int,
                   keep: Callable[[list[ResearchResult]], None], limit: ProviderLimit | None = None) -> list[ResearchResult]:
    """One research call per lead, relevant to the campaign goal, up to `max_concurrency` at once, within the provider's `limit`;
    the results are handed to `keep` as they come (every quarter of a second), so they are stored as the stage goes."""
    return map_handing_over(lambda lead: provider.research(lead, goal), leads, max_concurrency, keep, every_s=HAND_OVER_EVERY_S,
                            limit=limit)


def snippets_frame(campaign_id: str, results: list[ResearchResult], retrieved_at: datetime) -> pd.DataFrame:
    """`research_snippets` rows, ranked per lead; a lead's research cost is carried by its first snippet."""
    rows = [
        {
            "campaign_id": campaign_id, "lead_id": result.lead_id, "snippet_id": snippet.snippet_id, "rank": rank,
            "source_url": snippet.source_url, "title": snippet.title, "text": snippet.text,
            "published_date": snippet.published_date, "score": snippet.score, "query": result.query,
            "provider": result.provider, "cost_usd": result.cost_usd if rank == 1 else 0.0, "retrieved_at": retrieved_at,
        }
        for result in results
        for rank, snippet in enumerate(result.snippets[:MAX_SNIPPETS], start=1)
    ]
    return pd.DataFrame(rows)


def thin_leads(results: list[ResearchResult]) -> list[str]:
    """Leads with fewer than MIN_SNIPPETS snippets."""
    return [r.lead_id for r in results if len(r.snippets) < MIN_SNIPPETS]
