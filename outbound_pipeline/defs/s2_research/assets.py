"""Stage 2, research: 3-5 cited public snippets per recipient, fetched once per campaign."""


import dagster as dg
import pandas as pd

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.resources import PipelineClock, ResearchService, Warehouse
from outbound_pipeline.providers.base import ResearchResult
from outbound_pipeline.providers.concurrency import map_concurrently
from outbound_pipeline.store.campaigns import campaign_spec
from outbound_pipeline.store.contacts import lead_profiles
from outbound_pipeline.store.warehouse import insert_new

GROUP = "s2_research"
MIN_SNIPPETS = 3


def snippets_frame(campaign_id: str, results: list[ResearchResult], retrieved_at) -> pd.DataFrame:
    rows = []
    for result in results:
        for rank, snippet in enumerate(result.snippets[:5], start=1):
            rows.append({
                "campaign_id": campaign_id, "lead_id": result.lead_id, "snippet_id": snippet.snippet_id, "rank": rank,
                "source_url": snippet.source_url, "title": snippet.title, "text": snippet.text,
                "published_date": snippet.published_date, "score": snippet.score, "query": result.query,
                "provider": result.provider, "cost_usd": result.cost_usd if rank == 1 else 0.0, "retrieved_at": retrieved_at,
            })
    return pd.DataFrame(rows)


@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="duckdb", deps=["recipients"], kinds={"duckdb"})
def research_snippets(context: dg.AssetExecutionContext, warehouse: Warehouse, research: ResearchService, clock: PipelineClock) -> dg.MaterializeResult:
    """Research every recipient that has no snippets yet, so re-materialising costs nothing."""
    campaign_id = context.partition_key
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        todo = con.execute("""
            SELECT l.* FROM recipients r JOIN leads l USING (lead_id)
            WHERE r.campaign_id = ? AND NOT EXISTS (
                SELECT 1 FROM research_snippets s WHERE s.campaign_id = r.campaign_id AND s.lead_id = r.lead_id)
        """, [campaign_id]).df()
    provider = research.provider
    results = map_concurrently(lambda lead: provider.research(lead, spec.goal), lead_profiles(todo), research.max_concurrency)
    thin = [r.lead_id for r in results if len(r.snippets) < MIN_SNIPPETS]
    frame = snippets_frame(campaign_id, results, clock.now())
    with warehouse.connect() as con:
        added = insert_new(con, "research_snippets", frame)
        total = con.execute("SELECT count(DISTINCT lead_id) FROM research_snippets WHERE campaign_id = ?", [campaign_id]).fetchall()[0][0]
    if thin:
        context.log.warning(f"{len(thin)} leads have fewer than {MIN_SNIPPETS} snippets; drafts for them cite what there is")
    return dg.MaterializeResult(metadata={
        "provider": provider.name, "leads_researched": len(results), "snippets_added": added, "leads_with_snippets": total,
        "thin_leads": len(thin), "cost_usd": float(sum(r.cost_usd for r in results)),
    })
