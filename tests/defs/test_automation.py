"""Schedules and sensors evaluated against a real instance, as the daemon would."""

from __future__ import annotations

import dagster as dg

from outbound_pipeline.definitions import defs
from outbound_pipeline.defs.s7_cadence.sensors import due_touch_sensor
from outbound_pipeline.runner import LAUNCH
from tests.conftest import MONDAY_MORNING, add_campaign


def test_definitions_load_with_every_stage():
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"campaigns", "leads", "lead_rejects", "recipients", "research_snippets", "drafts", "approvals", "outbox", "sends",
            "delivery_events", "replies", "cadence_plan", "campaign_metrics"} <= keys


def test_due_touch_sensor_requests_the_touches_the_cadence_plan_found(driver, instance):
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    plan = driver.run(["cadence_plan"], MONDAY_MORNING, "demo_drip")
    assert plan.success
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = due_touch_sensor(context)
    requests = result.run_requests if hasattr(result, "run_requests") else list(result)
    assert [r.partition_key for r in requests] == ["demo_drip.t1"]
    assert requests[0].run_key.startswith("touch:demo_drip.t1:")
    with dg.build_sensor_context(instance=instance, cursor=context.cursor, definitions=defs) as again:
        repeat = due_touch_sensor(again)
    again_requested = repeat.run_requests if hasattr(repeat, "run_requests") else list(repeat or [])
    assert not [r for r in again_requested if isinstance(r, dg.RunRequest)]  # one plan, one request


def test_a_campaign_file_that_breaks_the_loader_never_stops_the_others(workdir, instance):
    from outbound_pipeline.defs.resources import CampaignCatalog
    from outbound_pipeline.defs.s1_audience.sensors import campaign_file_sensor
    from tests.defs.s7_cadence.helpers import write_campaign

    write_campaign(workdir, "aaa_long", type="drip", steps=[{"name": f"s{i}", "intent": "introduce", "next": [{"goto": f"s{i + 1}"}]}
                                                            for i in range(1, 1000)] + [{"name": "s1000", "intent": "introduce"}])
    write_campaign(workdir, "spring", type="drip", steps=[{"name": "intro", "intent": "introduce"}])
    (workdir / "campaigns" / "bomb.yaml").write_text("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdef", "bcdefg", strict=True)), encoding="utf-8")
    context = dg.build_sensor_context(instance=instance, resources={"catalog": CampaignCatalog(campaigns_dir=str(workdir / "campaigns"))})
    shipped = sorted(p.stem for p in (workdir / "campaigns").glob("*.yaml") if p.stem not in ("aaa_long", "bomb", "spring"))
    result = campaign_file_sensor(context)
    [request] = result.dynamic_partitions_requests
    assert list(request.partition_keys) == sorted([*shipped, "spring"])
    reason = result.skip_reason.skip_message
    assert "2 invalid campaign file(s)" in reason
    assert "aaa_long.yaml: the campaign has 1000 steps; a campaign may have at most 100" in reason
    assert "bomb.yaml: the campaign file expands to more than 50,000 values" in reason


def test_a_launch_from_the_ui_is_planned_at_once(driver, instance):
    from outbound_pipeline.defs.s7_cadence.sensors import launched_campaign_sensor

    add_campaign(instance, "demo_drip")
    launch = driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    assert launch.success
    with dg.build_sensor_context(instance=instance, definitions=defs) as context:
        result = launched_campaign_sensor(context)
    requests = result.run_requests if hasattr(result, "run_requests") else list(result)
    assert [r.partition_key for r in requests] == ["demo_drip"]
    assert launched_campaign_sensor.job_name == "cadence_job"
    assert requests[0].run_key == f"launched:demo_drip:{launch.run_id}"
    with dg.build_sensor_context(instance=instance, cursor=context.cursor, definitions=defs) as again:
        repeat = launched_campaign_sensor(again)
    repeated = repeat.run_requests if hasattr(repeat, "run_requests") else list(repeat or [])
    assert not [r for r in repeated if isinstance(r, dg.RunRequest)]  # one launch, one plan


def _started(instance, run_id: str):
    """What `compose_beside_research_sensor` is given when the run `run_id` is launched: the event the instance logs as
    it hands the run to the run launcher, before the run's process exists (as `DagsterInstance.launch_run` does)."""
    from outbound_pipeline.defs.s3_compose.sensors import compose_beside_research_sensor

    run = instance.get_run_by_id(run_id)
    instance.report_dagster_event(dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_STARTING.value, job_name=run.job_name),
                                  run_id=run_id)
    (record, *_) = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_STARTING, ascending=False).records
    context = dg.build_run_status_sensor_context(sensor_name=compose_beside_research_sensor.name, dagster_instance=instance,
                                                 dagster_run=instance.get_run_by_id(run_id),
                                                 dagster_event=record.event_log_entry.dagster_event)
    return compose_beside_research_sensor(context)


def test_compose_starts_as_the_launch_is_handed_to_the_run_launcher_and_counts_it_as_freezing_the_audience(instance):
    """Requested on STARTING, compose's process starts beside the launch's: the launch has run nothing yet, and compose
    must wait for it (`materialising_now` counts a run from its creation) rather than find no audience."""
    from outbound_pipeline.defs.runs import AUDIENCE, materialising_now
    from outbound_pipeline.defs.s3_compose.sensors import compose_beside_research_sensor

    add_campaign(instance, "demo_drip")
    assert not materialising_now(instance, AUDIENCE, "demo_drip")
    launch = instance.create_run_for_job(job_def=defs.resolve_job_def("launch_job"), tags={"dagster/partition": "demo_drip"})
    result = _started(instance, launch.run_id)
    assert instance.get_run_by_id(launch.run_id).status == dg.DagsterRunStatus.STARTING
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.partition_key == "demo_drip.t1" and request.run_key == f"compose-beside-research:demo_drip.t1:{launch.run_id}"
    assert materialising_now(instance, AUDIENCE, "demo_drip")  # the compose run waits for this launch
    assert compose_beside_research_sensor._run_status == dg.DagsterRunStatus.STARTING  # the status it is registered for


def test_a_launch_starts_drafting_its_first_touch_beside_its_research_as_it_starts(driver, instance):
    from outbound_pipeline.defs.s3_compose.jobs import compose_beside_research_job
    from outbound_pipeline.defs.s3_compose.sensors import compose_beside_research_sensor

    add_campaign(instance, "demo_drip")
    launch = driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    instance.delete_dynamic_partition("campaign_touches", "demo_drip.t1")  # as when the launch has only just started
    result = _started(instance, launch.run_id)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.partition_key == "demo_drip.t1" and request.run_key == f"compose-beside-research:demo_drip.t1:{launch.run_id}"
    (opening,) = result.dynamic_partitions_requests or []
    assert isinstance(opening, dg.AddDynamicPartitionsRequest) and list(opening.partition_keys) == ["demo_drip.t1"]
    assert compose_beside_research_sensor.job_name == "compose_beside_research_job"
    assert compose_beside_research_job.config == {"ops": {"drafts": {"config": {"follow_research": True}}}}  # it follows research
    assert defs.resolve_job_def("compose_beside_research_job").asset_layer.selected_asset_keys == {dg.AssetKey("drafts"),
                                                                                                   dg.AssetKey("recipient_steps")}
    instance.add_dynamic_partitions("campaign_touches", ["demo_drip.t1"])
    again = _started(instance, launch.run_id)
    assert isinstance(again, dg.SensorResult) and not again.dynamic_partitions_requests  # opened already: nothing to add


def test_a_run_that_does_not_launch_starts_no_compose_run(driver, instance):
    add_campaign(instance, "demo_drip")
    refresh = driver.run(["campaigns", "campaign_events", "leads", "lead_rejects", "recipients"], MONDAY_MORNING, "demo_drip")
    result = _started(instance, refresh.run_id)
    assert isinstance(result, dg.SkipReason) and "does not launch a campaign" in (result.skip_message or "")
    touch = driver.run(["drafts", "recipient_steps"], MONDAY_MORNING, "demo_drip.t1")
    assert isinstance(_started(instance, touch.run_id), dg.SkipReason)


def test_review_and_send_start_once_the_compose_run_beside_research_has_stored_its_first_drafts(driver, instance):
    """Not with compose, whose start theirs would slow: once it logs that its first drafts are stored."""
    from outbound_pipeline.defs.s3_compose.jobs import FOLLOW_RESEARCH
    from outbound_pipeline.defs.s4_review.jobs import review_beside_compose_job
    from outbound_pipeline.defs.s4_review.sensors import review_beside_compose_sensor
    from outbound_pipeline.defs.s5_send.jobs import send_beside_review_job
    from outbound_pipeline.defs.s5_send.sensors import send_beside_review_sensor

    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    sensors = (review_beside_compose_sensor, send_beside_review_sensor)
    for sensor in sensors:  # the audience is frozen and researched, but nothing is drafted yet
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            assert isinstance(sensor(context), dg.SkipReason)
    compose = driver.run(["drafts", "recipient_steps"], MONDAY_MORNING, "demo_drip.t1", run_config=FOLLOW_RESEARCH)
    assert compose.success
    configs = {"review_beside_compose_job": review_beside_compose_job.config, "send_beside_review_job": send_beside_review_job.config}
    expected = {review_beside_compose_sensor: ("review_beside_compose_job", "review-beside-compose", "approvals", "follow_compose"),
                send_beside_review_sensor: ("send_beside_review_job", "send-beside-review", "sends", "follow_review")}
    for sensor, (job, run_key, asset, follows) in expected.items():
        with dg.build_sensor_context(instance=instance, definitions=defs, cursor="0") as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult) and sensor.job_name == job
        (request,) = result.run_requests or []
        assert request.partition_key == "demo_drip.t1" and request.run_key == f"{run_key}:demo_drip.t1:{compose.run_id}"
        with dg.build_sensor_context(instance=instance, definitions=defs, cursor=result.cursor) as again:
            assert isinstance(sensor(again), dg.SkipReason)  # once
        with dg.build_sensor_context(instance=instance, definitions=defs) as first_tick:
            fresh = sensor(first_tick)  # a sensor switched on later takes up only compose runs still going
        assert isinstance(fresh, dg.SensorResult) and not fresh.run_requests
        resolved = defs.resolve_job_def(job)
        assert resolved.asset_layer.selected_asset_keys == {dg.AssetKey(asset)}
        assert configs[job] == {"ops": {asset: {"config": {follows: True}}}}  # each follows the stage before




def test_a_compose_run_of_the_plan_announces_no_first_drafts(driver, instance):
    """Only a run following research starts review and sending: a touch run of the plan drafts, reviews and sends itself."""
    add_campaign(instance, "demo_drip")
    driver.run(LAUNCH, MONDAY_MORNING, "demo_drip")
    assert driver.run(["drafts", "recipient_steps"], MONDAY_MORNING, "demo_drip.t1").success  # drafts every lead, follows nothing
    assert not instance.fetch_observations(dg.AssetKey("drafts"), limit=5).records
