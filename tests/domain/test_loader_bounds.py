"""Campaign files are user input read on every sensor tick: loading is bounded and fails only with CampaignSpecError."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outbound_pipeline.domain.loader import MAX_FILE_BYTES, CampaignSpecError, load_campaign_file, parse_campaign
from outbound_pipeline.domain.spec import MAX_STEPS, CampaignSpec

HEAD = "name: chain\ngoal: Book a call with operations leaders.\ntype: drip\naudience: {lead_list: leads.csv}\nsteps:\n"


def chain(n: int, back_to: int | None = None) -> str:
    """n steps, each branching to the next; the last one back to `back_to` (a cycle) or nowhere."""
    lines = [f"  - {{name: s{i}, intent: introduce, next: [{{goto: s{i + 1}}}]}}\n" for i in range(1, n)]
    last = f"next: [{{goto: s{back_to}}}]" if back_to else "final: true"
    return HEAD + "".join(lines) + f"  - {{name: s{n}, intent: introduce, {last}}}\n"


def test_a_thousand_steps_is_refused_with_the_file_named_not_a_recursion_error(tmp_path):
    path = tmp_path / "chain.yaml"
    path.write_text(chain(1000), encoding="utf-8")
    with pytest.raises(CampaignSpecError, match=rf"chain.yaml: the campaign has 1000 steps; a campaign may have at most {MAX_STEPS}"):
        load_campaign_file(path)


def test_the_cycle_check_is_iterative_at_the_step_cap():
    spec = parse_campaign(chain(MAX_STEPS))
    assert spec.n_touches == MAX_STEPS
    with pytest.raises(CampaignSpecError, match=r"steps form a cycle: s2 -> s3 -> .* -> s100 -> s2"):
        parse_campaign(chain(MAX_STEPS, back_to=2))
    # Built in code, bypassing the loader's count: the model itself holds the cap.
    data = yaml.safe_load(chain(MAX_STEPS + 1))
    with pytest.raises(ValueError, match="at most 100 items"):
        CampaignSpec.model_validate(data)


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "huge.yaml"
    path.write_text(HEAD + "  - {intent: introduce}\n" + "# padding\n" * (MAX_FILE_BYTES // 10 + 1), encoding="utf-8")
    with pytest.raises(CampaignSpecError, match=r"huge.yaml: the campaign file is [\d,]+ bytes; a campaign file may be at most 262,144 bytes"):
        load_campaign_file(path)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 5000, "not valid YAML"),
    ("a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\n"
     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e]\n",
     "expands to more than 50,000 values"),
    ("goal: 2026-02-31", "not valid YAML: ValueError: day is out of range for month"),
    ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 80)), "nests more than 64 levels deep"),
])
def test_hostile_yaml_is_a_campaign_error(text, message):
    with pytest.raises(CampaignSpecError, match=message):
        parse_campaign(text, "bad.yaml")


def test_a_file_that_is_not_utf8_is_a_campaign_error(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("goal: caf\xe9 et cr\xeape".encode("latin-1"))
    with pytest.raises(CampaignSpecError, match="latin.yaml: the campaign file is not UTF-8 text"):
        load_campaign_file(path)


def _loads_or_refuses(text: str) -> None:
    try:
        spec = parse_campaign(text, "prop.yaml")
    except CampaignSpecError as exc:
        assert str(exc).startswith("prop.yaml: ")
    else:
        assert isinstance(spec, CampaignSpec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_loads_or_is_a_campaign_error(text):
    _loads_or_refuses(text)


_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20) | st.dates()
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), inner,
                                                                                              max_size=4), max_leaves=20)
_fields = st.sampled_from(["name", "goal", "type", "approval", "audience", "steps", "sending_window", "limits", "retry_delay",
                           "end_after", "reply_mode", "intent", "next", "goto", "when", "variants", "delay", "channels"])
_step = st.dictionaries(st.sampled_from(["name", "intent", "delay", "channels", "next", "final", "variants", "when", "goto"]), _values,
                        max_size=5)
_campaigns = st.fixed_dictionaries({
    "name": st.sampled_from(["prop", "Prop!", "p"]), "goal": st.text(max_size=30), "type": st.sampled_from(["drip", "oneshot", "followup", "x"]),
    "audience": st.dictionaries(st.sampled_from(["lead_list", "filter", "default_region"]), _values, max_size=3),
    "steps": st.lists(_step, max_size=6),
}, optional={"extra": st.dictionaries(_fields, _values, max_size=3)})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_campaigns)
def test_any_yaml_mapping_loads_or_is_a_campaign_error(data):
    extra = data.pop("extra", {})
    _loads_or_refuses(yaml.safe_dump({**data, **extra}, allow_unicode=True))
