"""Templates: every variable form, substitution in one pass without evaluation, missing values visible and listed."""

from __future__ import annotations

import math
import re

from hypothesis import given
from hypothesis import strategies as st

from outbound_pipeline.domain.templates import (
    PLACEHOLDER,
    Rendered,
    render,
    template_context,
    unknown_variables,
    variables_in,
    whatsapp_slots,
)

LEAD = {"first_name": "Mary Ann", "last_name": "de la Cruz", "email": "mary@acme.example", "phone": "+15551234567",
        "company": "Acme Corp", "role": "COO", "country": "US", "timezone": None, "owner_email": float("nan")}
CUSTOM = {"deal_stage": "proposal", "notes": "VIP customer", "appointment_date": "2026-03-15"}


def context() -> dict[str, str]:
    return template_context(LEAD, CUSTOM, campaign_name="q1_outreach", step_name="intro", organisation_name="Northwind")


def test_every_name_form_is_filled() -> None:
    ctx = context()
    template = ("{{name}}|{{first_name}}|{{email}}|{{phone}}|{{deal_stage}}|{{contact.name}}|{{contact.company}}|"
                "{{campaign.name}}|{{step.name}}|{{company.name}}|{{custom.deal_stage}}|{{notes}}|{{company}}")
    assert render(template, ctx) == Rendered(
        "Mary Ann de la Cruz|Mary Ann|mary@acme.example|+15551234567|proposal|Mary Ann de la Cruz|Acme Corp|"
        "q1_outreach|intro|Northwind|proposal|VIP customer|Acme Corp", ())


def test_seed_prompt_renders_as_documented() -> None:
    text = "Hi {{name}}, this is Sarah from EWT. I'm calling about your {{deal_stage}} with {{company}}. Do you have a minute to chat?"
    assert render(text, context()).text == (
        "Hi Mary Ann de la Cruz, this is Sarah from EWT. I'm calling about your proposal with Acme Corp. Do you have a minute to chat?")


def test_spaces_inside_braces_and_case_do_not_matter() -> None:
    ctx = context()
    assert render("{{ first_name }} {{  Contact.Company}} {{DEAL_STAGE }} {{ contact . name }} {{Deal Stage}}", ctx).text == (
        "Mary Ann Acme Corp proposal Mary Ann de la Cruz proposal")


def test_company_name_is_the_sender_and_company_the_lead() -> None:
    assert render("{{company.name}} writes to {{company}}", context()).text == "Northwind writes to Acme Corp"


def test_a_custom_column_never_hides_a_lead_field() -> None:
    ctx = template_context({"first_name": "Ana"}, {"first_name": "Overridden", "email": "x@y"}, "c", "s", "o")
    assert ctx["first_name"] == "Ana"
    assert ctx["custom.first_name"] == "Overridden"
    assert render("{{email}}|{{custom.email}}", ctx) == Rendered("{{email}}|x@y", ("email",))


def test_name_without_last_name_is_the_first_name() -> None:
    ctx = template_context({"first_name": "Cher", "last_name": None}, {}, "c", "s", "o")
    assert render("Hi {{name}}", ctx).text == "Hi Cher"


def test_single_pass_prints_a_value_holding_a_placeholder_as_written() -> None:
    ctx = template_context(LEAD, {"notes": "ask for {{first_name}} and {{deal_stage}}"}, "c", "s", "o")
    assert render("Note: {{notes}} / {{first_name}}", ctx) == Rendered("Note: ask for {{first_name}} and {{deal_stage}} / Mary Ann", ())


def test_names_are_never_evaluated() -> None:
    ctx = context()
    for template in ("{{__class__}}", "{{first_name.__class__}}", "{{ 7*7 }}", "{{ config.items() }}", "{{contact.__dict__}}"):
        result = render(template, ctx)
        assert result.text == template
        assert len(result.missing) == 1


def test_format_strings_and_jinja_syntax_are_plain_text() -> None:
    ctx = context()
    text = "{0.__class__} {first_name} %(first_name)s {% if x %}y{% endif %} ${first_name} {{{first_name}}}"
    assert render(text, ctx) == Rendered("{0.__class__} {first_name} %(first_name)s {% if x %}y{% endif %} ${first_name} {Mary Ann}", ())
    assert render("{{first_name}}", {"first_name": "{0.__class__.__mro__}"}).text == "{0.__class__.__mro__}"


def test_missing_value_stays_visible_and_is_listed_once() -> None:
    ctx = template_context({"first_name": "Jane"}, {"deal_stage": ""}, "c", "s", "o")
    result = render("Hi {{first_name}}, your {{deal_stage}} at {{company}} ({{ deal_stage }}) on {{demo_date}}", ctx)
    assert result.text == "Hi Jane, your {{deal_stage}} at {{company}} ({{ deal_stage }}) on {{demo_date}}"
    assert result.missing == ("deal_stage", "company", "demo_date")


def test_empty_braces_are_not_variables() -> None:
    assert render("{{}} {{ }} {x}", {}) == Rendered("{{}} {{ }} {x}", ())


def test_variables_in_lists_each_normalised_name_once() -> None:
    assert variables_in("{{ Name }} {{deal_stage}} {{name}} {{contact.company}}") == ["name", "deal_stage", "contact.company"]


def test_unknown_variables_finds_typos_against_the_list_columns() -> None:
    assert unknown_variables("{{frist_name}} {{deal_stage}} {{custom.deal_stage}} {{step.name}} {{x}}", ["deal_stage"]) == ["frist_name", "x"]


def test_whatsapp_slots_from_field_custom_static_and_missing() -> None:
    ctx = context()
    mapping = {"1": "first_name", "2": "custom.deal_stage", "3": "static:Friday {{first_name}}", "4": "demo_date", "10": "contact.company",
               "5": "{{ email }}", "6": "static:"}
    values, missing = whatsapp_slots(mapping, ctx)
    assert values == {"1": "Mary Ann", "2": "proposal", "3": "Friday {{first_name}}", "4": "{{4}}", "5": "mary@acme.example",
                      "6": "{{6}}", "10": "Acme Corp"}
    assert list(values) == ["1", "2", "3", "4", "5", "6", "10"]
    assert missing == ("4", "6")


def test_nan_and_none_values_count_as_missing() -> None:
    ctx = template_context({"first_name": "Ana", "role": math.nan}, {"plan": None}, "c", "s", "o")
    assert render("{{role}}{{plan}}{{custom.plan}}", ctx).missing == ("role", "plan", "custom.plan")


# --------------------------------------------------------------------------- properties

NAMES = st.sampled_from(["first_name", "deal_stage", "company.name", "notes", "unknown_one", "x"])
KNOWN = {"first_name", "deal_stage", "company.name", "notes"}
values = st.lists(st.sampled_from([*"ab {}_.", "{{first_name}}", "{{x}}", "}}", "{{"]), max_size=8).map("".join)
contexts = st.fixed_dictionaries({name: values for name in KNOWN})
literals = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=10)


@given(st.text(), st.dictionaries(st.text(), st.text()))
def test_rendering_never_raises(template: str, ctx: dict[str, str]) -> None:
    result = render(template, ctx)
    assert isinstance(result.text, str)


@given(st.text(alphabet=st.characters(blacklist_characters="{}")), st.dictionaries(st.text(), st.text()))
def test_text_without_braces_is_unchanged(template: str, ctx: dict[str, str]) -> None:
    assert render(template, ctx) == Rendered(template, ())


@given(st.lists(st.one_of(literals, NAMES.map(lambda n: ("var", n))), max_size=8), contexts)
def test_every_known_placeholder_in_the_output_came_from_a_value(pieces: list[str | tuple[str, str]], ctx: dict[str, str]) -> None:
    """Rendering a template built from literals and placeholders equals filling each placeholder once, by its value as written."""
    template = "".join(p if isinstance(p, str) else "{{" + p[1] + "}}" for p in pieces)
    expected = "".join(
        p if isinstance(p, str) else (ctx[p[1]].strip() if p[1] in ctx and ctx[p[1]].strip() else "{{" + p[1] + "}}")
        for p in pieces
    )
    assert render(template, ctx).text == expected


@given(st.lists(st.one_of(literals, NAMES.map(lambda n: ("var", n))), max_size=8), contexts.map(lambda c: {k: v.replace("{", "") for k, v in c.items()}))
def test_known_variables_never_survive_when_values_hold_no_braces(pieces: list[str | tuple[str, str]], ctx: dict[str, str]) -> None:
    template = "".join(p if isinstance(p, str) else "{{" + p[1] + "}}" for p in pieces)
    left = {m.group(1) for m in PLACEHOLDER.finditer(render(template, ctx).text)}
    assert left <= {name for name in (*KNOWN, "unknown_one", "x") if not ctx.get(name, "").strip()}


# ------------------------------------------------------------------------------------------ template steps

from datetime import datetime, timedelta  # noqa: E402

import pytest  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from outbound_pipeline.domain.spec import Step  # noqa: E402
from outbound_pipeline.domain.templates import (  # noqa: E402
    reachable_channel,
    render_step,
    unreachable_reason,
    whatsapp_window_open,
)

STEP_CONTEXT = {"first_name": "Ana", "deal_stage": "proposal", "company.name": "Routewise", "appointment_date": ""}
CONTENT = {"content_sid": "HX" + "0" * 31 + "9", "variables": {"1": "first_name", "2": "static:Friday", "3": "appointment_date"},
           "body": "Hello {{1}}, see you {{2}} at {{3}}."}


def test_a_step_is_composed_or_rendered_and_an_email_template_needs_a_subject() -> None:
    with pytest.raises(ValidationError, match="needs an `intent`"):
        Step(name="s")
    with pytest.raises(ValidationError, match="needs a `subject`"):
        Step(name="s", channels=["email", "sms"], template="Hi {{first_name}}")
    with pytest.raises(ValidationError, match="belongs to a template step"):
        Step(name="s", intent="introduce", subject="Hi")
    assert Step(name="s", channels=["sms"], template="Hi").is_template and not Step(name="s", intent="introduce").is_template


def test_render_step_fills_the_email_subject_and_text_and_lists_what_is_missing() -> None:
    step = Step(name="s", channels=["email"], subject="{{deal_stage}} / {{appointment_date}}", template="Hi {{first_name}} from {{company.name}}")
    message = render_step(step, None, "email", STEP_CONTEXT, window_open=False)
    assert (message.subject, message.body, message.kind) == ("proposal / {{appointment_date}}", "Hi Ana from Routewise", "text")
    assert message.flags == ["template_variable_missing:appointment_date"]


def test_whatsapp_uses_free_text_inside_the_window_and_the_content_template_body_outside() -> None:
    step = Step(name="s", channels=["whatsapp"], template="Hi {{first_name}}, free text.", whatsapp_template=CONTENT)
    inside = render_step(step, None, "whatsapp", STEP_CONTEXT, window_open=True)
    outside = render_step(step, None, "whatsapp", STEP_CONTEXT, window_open=False)
    assert (inside.kind, inside.body) == ("text", "Hi Ana, free text.")
    assert (outside.kind, outside.body) == ("whatsapp_template", "Hello Ana, see you Friday at {{3}}.")
    assert outside.flags == ["template_variable_missing:appointment_date"]


def test_a_variant_replaces_the_template_for_the_leads_who_draw_it() -> None:
    step = Step(name="s", channels=["sms"], template="A {{first_name}}",
                variants=[{"name": "a"}, {"name": "b", "template": "B {{first_name}}"}])
    assert render_step(step, "b", "sms", STEP_CONTEXT, True).body == "B Ana"
    assert render_step(step, "a", "sms", STEP_CONTEXT, True).body == "A Ana"


def test_reachability_keeps_to_the_steps_channels() -> None:
    assert reachable_channel(["sms", "email"], "a@b.example", None) == "email"
    assert reachable_channel(["whatsapp", "sms"], "a@b.example", None) is None
    assert reachable_channel(["email"], None, "+34612345678") is None
    assert unreachable_reason(["whatsapp", "sms"]) == "no phone number"
    assert unreachable_reason(["email"]) == "no email address"
    assert unreachable_reason(["email", "sms"]) == "no email address or phone number"


def test_whatsapp_window_is_24_hours_from_the_last_inbound_message() -> None:
    now = datetime(2026, 1, 5, 12)
    assert whatsapp_window_open(now - timedelta(hours=23, minutes=59), now)
    assert not whatsapp_window_open(now - timedelta(hours=24), now)
    assert not whatsapp_window_open(None, now)


def test_variables_no_contact_can_fill_are_named_with_their_step() -> None:
    from outbound_pipeline.domain.loader import parse_campaign
    from outbound_pipeline.domain.templates import composed_steps, unfillable_variables

    spec = parse_campaign("""
name: c
goal: Remind customers of their orders.
type: drip
audience: {lists: [shop]}
steps:
  - name: first
    channels: [whatsapp, sms]
    template: "Hi {{first_name}}, order {{order_id}} for {{campaign.name}} ({{ Deal Stage }}) {{custom.order_id}} {{frist_name}}"
    whatsapp_template: {content_sid: HX00000000000000000000000000000001, variables: {"1": custom.order_id, "2": "static:x", "3": track_url}}
  - {name: second, intent: follow_up}
""")
    problems = unfillable_variables(spec.steps, spec.step_names, ["order_id", "deal_stage"])
    assert problems == [
        "step 'first' (template): {{frist_name}} is not a contact field, a built-in name or a custom column of the campaign's lists "
        "(their columns: deal_stage, order_id)",
        "step 'first' (whatsapp_template slot 3): {{track_url}} is not a contact field, a built-in name or a custom column of the "
        "campaign's lists (their columns: deal_stage, order_id)"]
    assert unfillable_variables(spec.steps, spec.step_names, ["order_id", "deal_stage", "track_url", "frist_name"]) == []
    assert composed_steps(spec.steps, spec.step_names) == ["second"]


def test_whatsapp_media_and_buttons_are_checked_and_rendered() -> None:
    import pytest

    from outbound_pipeline.domain.loader import CampaignSpecError, parse_campaign
    from outbound_pipeline.domain.templates import render_step

    base = """
name: c
goal: Remind customers of their orders.
type: oneshot
audience: {lists: [shop]}
steps:
  - name: first
    channels: [whatsapp]
    template: "Hi {{first_name}}"
"""
    spec = parse_campaign(base + """    media_url: https://cdn.shop.example/catalogue.pdf
    whatsapp_template:
      content_sid: HX00000000000000000000000000000001
      variables: {"1": first_name, "2": custom.order_id}
      body: "Hi {{1}}, your order is ready."
      media_url: https://cdn.shop.example/orders/{{2}}.png
      buttons: [Track it, "Talk to {{1}}"]
""")
    step = spec.steps[0]
    ctx = template_context({"first_name": "Ana"}, {"order_id": "A-17"}, "c", "first", "Shop")
    closed = render_step(step, None, "whatsapp", ctx, window_open=False)
    assert (closed.kind, closed.body, closed.media_url, closed.buttons) == (
        "whatsapp_template", "Hi Ana, your order is ready.", "https://cdn.shop.example/orders/A-17.png", ("Track it", "Talk to Ana"))
    opened = render_step(step, None, "whatsapp", ctx, window_open=True)
    assert (opened.kind, opened.body, opened.media_url, opened.buttons) == ("text", "Hi Ana", "https://cdn.shop.example/catalogue.pdf", ())
    bad = {
        "body: \"Hi {{1}} {{4}}\"": "slot(s) {{4}} of the WhatsApp template have no source in `variables`",
        "buttons: [This title is far too long for WhatsApp]": "at most 20 characters",
        "buttons: [A, B, C, D, E, F, G, H, I, J, K]": "at most 10 items",
        "buttons: [Confirm, Confirm]": "button titles must be unique",
        "media_url: http://cdn.shop.example/x.png": "should match pattern",
    }
    for line, message in bad.items():
        text = base + f"    whatsapp_template:\n      content_sid: HX00000000000000000000000000000001\n      variables: {{\"1\": first_name}}\n      {line}\n"
        with pytest.raises(CampaignSpecError, match=re.escape(message)):
            parse_campaign(text)
    with pytest.raises(CampaignSpecError, match="`media_url` goes with a template step's WhatsApp free text"):
        parse_campaign(base.replace("[whatsapp]", "[sms]") + "    media_url: https://cdn.shop.example/x.png\n")
