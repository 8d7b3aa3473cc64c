"""What an opt-out covers: one channel or every channel, by scope, reason and words."""

from __future__ import annotations

import pytest

from outbound_pipeline.domain.preferences import asks_for_everything, opt_out_channel, parse_scope


def test_scope_all_makes_every_opt_out_global() -> None:
    assert opt_out_channel("opt_out", "sms", "STOP", "all") == "all"
    assert opt_out_channel("unsubscribe_link", "email", None, "all") == "all"


def test_scope_channel_keeps_an_opt_out_to_its_channel() -> None:
    assert opt_out_channel("opt_out", "sms", "STOP", "channel") == "sms"
    assert opt_out_channel("opt_out", "whatsapp", "stop", "channel") == "whatsapp"
    assert opt_out_channel("unsubscribe_link", "email", None, "channel") == "email"
    assert opt_out_channel("opt_out", None, "STOP", "channel") == "all"  # unknown channel: the safe side


@pytest.mark.parametrize("text", ["STOP ALL", "stopall", "Unsubscribe all", "please remove me from everything",
                                  "unsubscribe me from all channels", "opt out of everything"])
def test_asking_to_stop_everything_is_global_in_any_scope(text: str) -> None:
    assert asks_for_everything(text)
    assert opt_out_channel("opt_out", "sms", text, "channel") == "all"


@pytest.mark.parametrize("reason", ["complaint", "hard_bounce", "invalid_number"])
def test_complaints_bounces_and_invalid_numbers_cover_every_channel(reason: str) -> None:
    assert opt_out_channel(reason, "email", None, "channel") == "all"


def test_a_plain_stop_does_not_ask_for_everything_and_the_scope_is_checked() -> None:
    assert not asks_for_everything("STOP") and not asks_for_everything("stop texting me")
    assert parse_scope(None) == "all" and parse_scope(" Channel ") == "channel"
    with pytest.raises(ValueError, match="OUTBOUND_OPT_OUT_SCOPE='email' must be one of: all, channel"):
        parse_scope("email")
