"""Stage 2, research: 3-5 cited public snippets per recipient, fetched once per campaign."""

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.resources import PipelineClock, ResearchService, Warehouse
from outbound_pipeline.domain.templates import composed_steps
from outbound_pipeline.engine.profiles import lead_profiles
from outbound_pipeline.engine.research import MIN_SNIPPETS, research_leads, snippets_frame, thin_leads
from outbound_pipeline.providers.base import ResearchResult
from outbound_pipeline.store import research as research_store
from outbound_pipeline.store.campaigns import campaign_spec

GROUP = "s2_research"


class ResearchConfig(dg.Config):
    """`max_leads`: research at most this many of the recipients still without research (0: all of them), so a touch
    can be researched in slices that compose and send take up while the next slice is researched."""

    max_leads: int = 0


# In its own pool, not `duckdb`: the step holds the file only for two short units of work, never while Tavily answers;
# one research step at a time keeps the process-wide Tavily limit true.
@dg.asset(partitions_def=campaign_partitions, group_name=GROUP, pool="research", deps=["campaigns", "leads", "recipients"], kinds={"duckdb"})
def research_snippets(context: dg.AssetExecutionContext, config: ResearchConfig, warehouse: Warehouse, research: ResearchService,
                      clock: PipelineClock) -> dg.MaterializeResult:
    """Research every recipient that has no snippets yet, so re-materialising costs nothing."""
    campaign_id = context.partition_key
    with warehouse.connect() as con:
        spec = campaign_spec(con, campaign_id)
        todo = research_store.recipients_without_research(con, campaign_id)
    if config.max_leads:
        todo = todo.head(config.max_leads)
    if not composed_steps(spec.steps, spec.step_names):  # template steps render the user's text: nothing to research
        return dg.MaterializeResult(metadata={"skipped": "no composed step", "leads_researched": 0, "snippets_added": 0, "cost_usd": 0.0})
    provider = research.provider
    added = 0

    def keep(batch: list[ResearchResult]) -> None:  # stored as they come: compose can draft them while the rest is researched
        nonlocal added
        with warehouse.connect() as con:
            added += research_store.insert_snippets(con, snippets_frame(campaign_id, batch, clock.now()))

    results = research_leads(provider, lead_profiles(todo), spec.goal, research.max_concurrency, keep, research.limit())
    thin = thin_leads(results)
    with warehouse.connect() as con:
        total = research_store.researched_leads(con, campaign_id)
    if thin:
        context.log.warning(f"{len(thin)} leads have fewer than {MIN_SNIPPETS} snippets; drafts for them cite what there is")
    return dg.MaterializeResult(metadata={
        "provider": provider.name, "leads_researched": len(results), "snippets_added": added, "leads_with_snippets": total,
        "thin_leads": len(thin), "cost_usd": float(sum(r.cost_usd for r in results)),
    })
