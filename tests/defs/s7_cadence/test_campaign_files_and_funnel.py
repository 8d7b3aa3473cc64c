"""Campaign files become launchable partitions; A/B assignment on `recipients`; variant templates; the step funnel."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from outbound_pipeline.defs.partitions import campaign_partitions
from outbound_pipeline.defs.resources import CampaignCatalog
from outbound_pipeline.defs.s1_audience.sensors import campaign_file_sensor
from outbound_pipeline.domain.limits import OrgLimits
from outbound_pipeline.engine.dispatch import dispatch
from outbound_pipeline.providers.base import OutboundMessage, SendResult
from outbound_pipeline.runner import LAUNCH
from outbound_pipeline.store import warehouse
from outbound_pipeline.store.campaigns import campaign_spec
from tests.conftest import MONDAY_MORNING, add_campaign
from tests.defs.s7_cadence.helpers import simulate, write_campaign


def test_campaign_file_sensor_adds_a_partition_per_valid_file_and_reports_invalid_ones(workdir, instance):
    campaigns = workdir / "campaigns"
    write_campaign(workdir, "spring", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    write_campaign(workdir, "broken", type="drip", steps=[{"name": "intro", "intent": "introduce", "delay": "3 weeks"}])
    (campaigns / "renamed.yaml").write_text((campaigns / "spring.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (campaigns / "notes.txt").write_text("not a campaign", encoding="utf-8")
    context = dg.build_sensor_context(instance=instance, resources={"catalog": CampaignCatalog(campaigns_dir=str(campaigns))})
    shipped = sorted(p.stem for p in campaigns.glob("*.yaml") if p.stem not in ("spring", "broken", "renamed"))

    result = campaign_file_sensor(context)
    assert result.run_requests == []  # launching stays an explicit act
    [request] = result.dynamic_partitions_requests
    assert request.partitions_def_name == campaign_partitions.name
    assert list(request.partition_keys) == sorted([*shipped, "spring"])
    reason = result.skip_reason.skip_message
    assert "2 invalid campaign file(s)" in reason
    assert "broken.yaml: invalid campaign:" in reason and "steps.0.delay: delay '3 weeks' is not a number" in reason
    assert "renamed.yaml: campaign name 'spring' must match the file name 'renamed'" in reason
    assert not (workdir / "outbound.duckdb").exists()  # files only: the sensor never opened DuckDB

    instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    (campaigns / "broken.yaml").unlink()
    (campaigns / "renamed.yaml").unlink()
    again = campaign_file_sensor(context)
    assert again.dynamic_partitions_requests == []
    assert again.skip_reason.skip_message == f"no new campaign file ({len(shipped) + 1} valid, all already partitions)"


class RecordingChannel:
    name = "recording"
    channels = ("email", "whatsapp", "sms")

    def __init__(self):
        self.messages: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> SendResult:
        self.messages.append(message)
        return SendResult(send_id=message.send_id, status="sent", provider=self.name, provider_message_id=f"r_{message.send_id}")

    def lookup(self, message: OutboundMessage) -> SendResult | None:
        return None


def test_variants_are_on_recipients_and_each_variant_sends_its_own_whatsapp_template(driver, instance, db, workdir):
    template_a, template_b = "HX" + "a" * 32, "HX" + "b" * 32
    write_campaign(workdir, "tmpl", type="drip", steps=[{
        "name": "intro", "intent": "introduce", "channels": ["whatsapp"],
        "whatsapp_template": {"content_sid": "HX" + "0" * 32, "variables": {"1": "first_name"}},
        "variants": [{"name": "plain", "weight": 1, "whatsapp_template": {"content_sid": template_a, "variables": {"1": "first_name"}}},
                     {"name": "bold", "weight": 1, "tone": "direct", "whatsapp_template": {"content_sid": template_b, "variables": {"1": "company"}}}]}])
    add_campaign(instance, "tmpl")
    driver.run(LAUNCH, MONDAY_MORNING, "tmpl")
    driver.run(["drafts", "approvals", "outbox"], MONDAY_MORNING, "tmpl.t1")
    with db() as con:
        spec = campaign_spec(con, "tmpl")
        assigned = dict(con.execute("SELECT lead_id, variant FROM recipient_steps WHERE campaign_id = 'tmpl' AND touch = 1").fetchall())
        on_recipients = dict(con.execute("SELECT lead_id, variant FROM recipients WHERE campaign_id = 'tmpl' AND variant IS NOT NULL").fetchall())
    assert on_recipients == assigned and set(assigned.values()) == {"plain", "bold"}

    channel = RecordingChannel()
    stats = dispatch(lambda: warehouse.connect(workdir / "outbound.duckdb"), lambda ch: channel, lambda name: channel, spec, 1, MONDAY_MORNING,
                     limits=OrgLimits(whatsapp_tier=None, weekly_per_lead=None, daily=None,
                                     per_second=dict.fromkeys(("email", "whatsapp", "sms"), 1000.0)))
    whatsapp = [m for m in channel.messages if m.channel == "whatsapp"]
    assert stats.sent == len(channel.messages) and len(whatsapp) > 4
    expected = {"plain": template_a, "bold": template_b}
    assert all(m.whatsapp_template.content_sid == expected[assigned[m.lead_id]] for m in whatsapp)
    assert {m.whatsapp_template.content_sid for m in whatsapp} == {template_a, template_b}


def test_funnel_metrics_count_each_step_and_its_drop_off(driver, instance, db, workdir):
    write_campaign(workdir, "funnel", type="drip", steps=[
        {"name": "intro", "intent": "introduce", "next": [{"when": {"replied_intent": "any"}, "goto": "answer"}, {"goto": "nudge"}]},
        {"name": "nudge", "delay": "2d", "intent": "follow_up_on_signal"},
        {"name": "wrap", "delay": "2d", "intent": "last_touch", "final": True},
        {"name": "answer", "delay": "1h", "intent": "answer_question", "final": True}])
    end = simulate(driver, instance, "funnel", MONDAY_MORNING, days=6, tick=timedelta(days=1))
    result = driver.run(["funnel_metrics", "variant_metrics", "campaign_metrics"], end)
    assert result.success
    with db() as con:
        funnel = con.execute("SELECT * FROM funnel_metrics WHERE campaign_id = 'funnel' ORDER BY touch").df().set_index("step")
        entered = {s: {r[0] for r in con.execute("SELECT lead_id FROM recipient_steps WHERE campaign_id = 'funnel' AND step = ?", [s]).fetchall()}
                   for s in ("intro", "nudge", "wrap", "answer")}
        sent = dict(con.execute("SELECT touch, count(*) FROM sends WHERE campaign_id = 'funnel' AND status = 'sent' GROUP BY touch").fetchall())
        delivered, engaged = (dict(con.execute(f"""
            SELECT s.touch, count(DISTINCT s.send_id) FROM sends s JOIN delivery_events e USING (send_id)
            WHERE s.campaign_id = 'funnel' AND e.event_type IN ({kinds}) GROUP BY s.touch""").fetchall())
            for kinds in ("'delivered', 'opened', 'read', 'clicked'", "'opened', 'read', 'clicked'"))
        replied = dict(con.execute("""SELECT s.touch, count(DISTINCT s.send_id) FROM sends s JOIN replies p USING (send_id)
                                      WHERE s.campaign_id = 'funnel' AND p.intent <> 'opt_out' GROUP BY s.touch""").fetchall())
        whole = con.execute("SELECT sent, replied FROM campaign_metrics WHERE campaign_id = 'funnel' AND touch = 0").fetchall()[0]

    assert list(funnel.index) == ["intro", "nudge", "wrap", "answer"]
    assert funnel["previous_steps"].tolist()[1:] == ["intro", "nudge", "intro"]
    assert funnel.loc[["intro"], ["previous_steps", "previous_entered", "dropped", "dropoff_rate"]].isna().all(axis=None)  # the entry step
    for touch, step in enumerate(funnel.index, start=1):
        row = funnel.loc[step]
        assert row["entered"] == len(entered[step])
        assert (row["sent"], row["delivered"], row["engaged"], row["replied"]) == (
            sent.get(touch, 0), delivered.get(touch, 0), engaged.get(touch, 0), replied.get(touch, 0))
    assert funnel["sent"].sum() == whole[0] and funnel["replied"].sum() == whole[1]  # the steps add up to the campaign

    # Drop-off: the share of the previous step's recipients who did not enter this one.
    intro, nudge, wrap, answer = (entered[s] for s in ("intro", "nudge", "wrap", "answer"))
    assert funnel.loc["nudge", "previous_entered"] == len(intro) and funnel.loc["nudge", "dropped"] == len(intro - nudge)
    assert funnel.loc["wrap", "dropped"] == len(nudge - wrap) and funnel.loc["answer", "dropped"] == len(intro - answer)
    assert abs(funnel.loc["nudge", "dropoff_rate"] - len(intro - nudge) / len(intro)) < 1e-9
    assert 0 < funnel.loc["nudge", "dropoff_rate"] < 1 and len(answer) > 0  # repliers went to `answer`, not `nudge`
    assert 0 < len(wrap) <= len(nudge)
