"""Campaign YAML: valid specs load, and every mistake names the file and the field."""

from __future__ import annotations

import pytest

from outbound_pipeline.domain.loader import (
    CampaignSpecError,
    UnknownCampaignError,
    get_campaign,
    load_campaign_file,
    load_campaigns,
    parse_campaign,
)
from outbound_pipeline.settings import DATA_DIR

VALID = """
name: spring
goal: Book a call with operations leaders about late deliveries.
type: drip
approval: batch
audience: {lead_list: sample_leads.csv, filter: {country: [ES, PT]}}
steps:
  - {delay: 0h, channels: [email], intent: introduce}
  - {delay: 2bd, channels: [whatsapp, sms], intent: follow_up_on_signal}
"""


def test_shipped_demo_campaign_is_valid():
    spec = load_campaign_file(DATA_DIR / "campaigns" / "demo_drip.yaml")
    assert spec.type == "drip" and spec.n_touches == 3 and spec.approval == "auto"
    assert [s.delay for s in spec.steps] == ["0h", "3d", "4d"]
    assert spec.sending_window.days == ["mon", "tue", "wed", "thu", "fri"]


def test_valid_spec_parses_with_defaults():
    spec = parse_campaign(VALID)
    assert spec.steps[1].delay_parts == (2, "bd")
    assert spec.audience.filter == {"country": ["ES", "PT"]}
    assert spec.sending_window.start.hour == 8 and spec.sending_window.end.hour == 21


@pytest.mark.parametrize(("change", "message"), [
    (("type: drip", "type: blast"), r"type: Input should be 'drip', 'oneshot' or 'followup'"),
    (("approval: batch", "approval: sometimes"), r"approval: Input should be 'manual', 'batch' or 'auto'"),
    (("delay: 2bd", "delay: 3 weeks"), r"steps\.1\.delay: delay '3 weeks' is not a number followed by m, h, d or bd"),
    (("channels: [email]", "channels: [fax]"), r"steps\.0\.channels\.0: Input should be 'email', 'whatsapp', 'sms' or 'voice'"),
    (("name: spring", "name: Spring Campaign!"), r"name: name must be lower-case letters"),
    (("goal: Book a call with operations leaders about late deliveries.", "goal: hi"), r"goal: String should have at least 10 characters"),
    (("audience: {lead_list: sample_leads.csv, filter: {country: [ES, PT]}}", "audience: {filter: {}}"), r"audience\.lead_list: Field required"),
    (("type: drip", "type: drip\ncolour: blue"), r"colour: Extra inputs are not permitted"),
])
def test_mistakes_name_the_field(change, message):
    with pytest.raises(CampaignSpecError, match=message) as caught:
        parse_campaign(VALID.replace(*change), "campaigns/spring.yaml")
    assert str(caught.value).startswith("campaigns/spring.yaml: invalid campaign:")


def test_not_yaml_or_not_a_mapping_is_a_clear_error():
    with pytest.raises(CampaignSpecError, match="not valid YAML"):
        parse_campaign("name: [unclosed", "x.yaml")
    with pytest.raises(CampaignSpecError, match="must be a mapping of fields, got list"):
        parse_campaign("- a\n- b\n", "x.yaml")


def test_file_name_must_match_and_unknown_campaign_lists_the_known_ones(tmp_path):
    (tmp_path / "other.yaml").write_text(VALID, encoding="utf-8")
    with pytest.raises(CampaignSpecError, match="campaign name 'spring' must match the file name 'other'"):
        load_campaigns(tmp_path)
    (tmp_path / "other.yaml").rename(tmp_path / "spring.yaml")
    assert list(load_campaigns(tmp_path)) == ["spring"]
    with pytest.raises(UnknownCampaignError, match=r"unknown campaign 'autumn': no autumn.yaml in .* \(known: spring\)"):
        get_campaign("autumn", tmp_path)
