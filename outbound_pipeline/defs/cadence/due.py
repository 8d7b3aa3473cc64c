"""Who is due for which touch: the rule every stage and schedule shares."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from outbound_pipeline.campaigns.spec import CampaignSpec


def minus_business_days(moment: datetime, days: int) -> datetime:
    """The instant `days` business days (Mon-Fri) before `moment`."""
    while days > 0:
        moment -= timedelta(days=1)
        if moment.weekday() < 5:
            days -= 1
    return moment


def sent_before_cutoff(spec: CampaignSpec, touch: int, now: datetime) -> datetime:
    """A previous touch sent at or before this instant makes touch `touch` due now."""
    amount, unit = spec.step(touch).delay_parts
    if unit == "bd":
        return minus_business_days(now, amount)
    return now - spec.step(touch).delay_timedelta()


def due_leads(con: duckdb.DuckDBPyConnection, spec: CampaignSpec, touch: int, now: datetime) -> pd.DataFrame:
    """Leads (rows of `leads`) due for `touch` now and not drafted for it yet.

    Touch 1: every active recipient. Later touches: the previous touch was sent at least
    the step's delay ago, and the lead never replied to this campaign.
    """
    params: list = [spec.name, touch]
    previous = ""
    if touch > 1:
        previous = """
            AND EXISTS (SELECT 1 FROM sends s WHERE s.campaign_id = r.campaign_id AND s.lead_id = r.lead_id
                        AND s.touch = ? AND s.status = 'sent' AND s.sent_at <= ?)
            AND NOT EXISTS (SELECT 1 FROM replies p WHERE p.campaign_id = r.campaign_id AND p.lead_id = r.lead_id)
        """
        params += [touch - 1, sent_before_cutoff(spec, touch, now)]
    return con.execute(f"""
        SELECT l.* FROM recipients r JOIN leads l USING (lead_id)
        WHERE r.campaign_id = ? AND r.status = 'active' AND l.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM drafts d WHERE d.campaign_id = r.campaign_id AND d.lead_id = r.lead_id AND d.touch = ?)
          {previous}
        ORDER BY l.lead_id
    """, params).df()
