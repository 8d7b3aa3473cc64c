"""Offline research: shipped sample signals instead of a web search, deterministic per lead."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from outbound_pipeline import settings
from outbound_pipeline.ids import stable_id, unit_interval
from outbound_pipeline.providers.base import LeadProfile, ResearchResult, Snippet

_GENERIC = [
    ("{industry} teams face rising delivery expectations", "Industry surveys show {industry} customers now expect two-day delivery as standard."),
    ("Late deliveries drive churn in {industry}", "A 2026 benchmark found late deliveries are the top reason {industry} customers switch suppliers."),
    ("Routing software adoption grows in {industry}", "More {industry} operators are re-planning routes during the day instead of once each morning."),
    ("WhatsApp becomes a delivery channel in {industry}", "Operators in {industry} increasingly confirm delivery slots over WhatsApp."),
    ("{industry} hiring for operations roles", "Job boards list a rise in operations analyst openings across {industry}."),
]


class OfflineResearch:
    """Reads `data/sample_signals.json` (company -> signals); unknown companies get industry signals."""

    name = "offline"

    def __init__(self, signals_path: str | Path | None = None):
        self.signals_path = Path(signals_path or settings.DATA_DIR / "sample_signals.json")

    @cached_property
    def signals(self) -> dict[str, list[dict]]:
        return json.loads(self.signals_path.read_text(encoding="utf-8"))

    def research(self, lead: LeadProfile, goal: str) -> ResearchResult:
        count = 3 + int(unit_interval("research-count", lead.lead_id) * 3)  # 3, 4 or 5
        items = self.signals.get(lead.company or "")
        if not items:
            industry = str(lead.custom.get("industry") or "logistics")
            slug = industry.lower().replace(" ", "-")
            items = [
                {"title": t.format(industry=industry), "content": c.format(industry=industry),
                 "url": f"https://signals.example/{slug}/{i + 1}", "published_date": None}
                for i, (t, c) in enumerate(_GENERIC)
            ]
        snippets = [
            Snippet(
                snippet_id=stable_id("snp", lead.lead_id, item["url"]),
                source_url=item["url"],
                title=item["title"],
                text=item["content"],
                published_date=item.get("published_date"),
                score=round(1.0 - rank * 0.1, 2),
            )
            for rank, item in enumerate(items[:count])
        ]
        return ResearchResult(lead.lead_id, f"{lead.company or ''} {lead.role or ''} {goal}".strip(), snippets, self.name, 0.0)
