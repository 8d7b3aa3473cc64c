"""Segment counts checked against the carrier rules (GSM 03.38, 3GPP TS 23.040 concatenation)."""

from __future__ import annotations

import pytest

from outbound_pipeline.providers.sms_segments import GSM7_BASIC, GSM7_EXTENSION, count_segments, is_gsm7


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("", ("GSM-7", 0)),
        ("Hi Ana", ("GSM-7", 1)),
        ("a" * 160, ("GSM-7", 1)),
        ("a" * 161, ("GSM-7", 2)),
        ("a" * 306, ("GSM-7", 2)),
        ("a" * 307, ("GSM-7", 3)),
        ("a" * 459, ("GSM-7", 3)),
        ("a" * 460, ("GSM-7", 4)),
        # Accented letters in the basic table stay GSM-7.
        ("é" * 160, ("GSM-7", 1)),
        ("Ñandù à Çà" * 16, ("GSM-7", 1)),
        ("Ñandú", ("UCS-2", 1)),  # ú is not in the GSM-7 table (ù is)
    ],
)
def test_gsm7_boundaries(body: str, expected: tuple[str, int]) -> None:
    assert count_segments(body) == expected


def test_extension_characters_take_two_septets() -> None:
    assert count_segments("€" * 80) == ("GSM-7", 1)  # 160 septets
    assert count_segments("€" * 81) == ("GSM-7", 2)  # 162 septets
    assert count_segments("a" * 158 + "{") == ("GSM-7", 1)
    assert count_segments("a" * 159 + "{") == ("GSM-7", 2)
    assert count_segments("\f") == ("GSM-7", 1)


def test_extension_character_is_never_split_across_parts() -> None:
    # 152 + 2 septets fits no part of 153: the escape pair moves to part 2.
    body = "a" * 152 + "€" + "a" * 152
    assert sum(2 if c == "€" else 1 for c in body) == 306  # would fit 2 parts if splittable
    assert count_segments(body) == ("GSM-7", 3)
    assert count_segments("a" * 151 + "€" + "a" * 153) == ("GSM-7", 2)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ł" * 70, ("UCS-2", 1)),
        ("ł" * 71, ("UCS-2", 2)),
        ("ł" * 134, ("UCS-2", 2)),
        ("ł" * 135, ("UCS-2", 3)),
        ("Привет", ("UCS-2", 1)),
        ("你好" * 35, ("UCS-2", 1)),
    ],
)
def test_ucs2_boundaries(body: str, expected: tuple[str, int]) -> None:
    assert count_segments(body) == expected


def test_one_non_gsm_character_switches_the_whole_message() -> None:
    body = "a" * 69 + "ł"
    assert count_segments(body) == ("UCS-2", 1)
    assert count_segments("a" * 70 + "ł") == ("UCS-2", 2)
    # A GSM-7 extension char costs one unit in UCS-2, not two.
    assert count_segments("€" * 69 + "ł") == ("UCS-2", 1)


def test_emoji_counts_two_utf16_code_units() -> None:
    assert count_segments("😀") == ("UCS-2", 1)
    assert count_segments("😀" * 35) == ("UCS-2", 1)  # 70 code units
    assert count_segments("😀" * 35 + "a") == ("UCS-2", 2)  # 71 code units
    assert count_segments("a" * 69 + "😀") == ("UCS-2", 2)
    # Thanks for the chat 👋 -> one emoji turns a short GSM text into UCS-2.
    assert count_segments("Thanks for the chat, Ana 👋") == ("UCS-2", 1)


def test_surrogate_pair_is_never_split_across_parts() -> None:
    # 66 units + a 2-unit emoji does not fit part 1 (67), so the emoji starts part 2.
    body = "ł" * 66 + "😀" + "ł" * 66
    assert len(body.encode("utf-16-le")) // 2 == 134
    assert count_segments(body) == ("UCS-2", 3)
    assert count_segments("ł" * 65 + "😀" + "ł" * 67) == ("UCS-2", 2)


def test_alphabet_tables() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions minus the escape
    assert len(GSM7_EXTENSION) == 10
    assert is_gsm7("Hello @ £5 [ok] ~ |")
    assert not is_gsm7("Hello `backtick`")  # ` is not GSM-7
    assert not is_gsm7("\x1b")  # a raw escape is not a character
    assert count_segments("Price: `5`") == ("UCS-2", 1)


@pytest.mark.parametrize(
    "body",
    ["a" * 160, "a" * 161, "€" * 80, "Hi 👋 see you Tuesday", "ł" * 70, "ł" * 71, "a" * 152 + "€" + "a" * 152, "Ñandú" * 20],
)
def test_offline_channel_bills_the_segments_carriers_count(tmp_path, body: str) -> None:
    from outbound_pipeline.providers.base import OutboundMessage
    from outbound_pipeline.providers.channel_offline import OfflineChannel
    from outbound_pipeline.providers.sms_segments import SMS_PRICE_PER_SEGMENT_USD, sms_cost

    channel = OfflineChannel(tmp_path)
    send_id = "snd_" + str(abs(hash(body)))
    result = channel.send(OutboundMessage(send_id=send_id, idempotency_key=send_id, campaign_id="c", touch=1, lead_id="l",
                                          channel="sms", to="+34612345678", body=body))
    encoding, segments, cost = sms_cost(body)
    assert result.segments == segments == count_segments(body)[1]
    assert result.status == "failed" or result.cost_usd == pytest.approx(segments * SMS_PRICE_PER_SEGMENT_USD) == pytest.approx(cost)


def test_160_gsm_characters_are_one_segment_and_an_emoji_message_is_ucs2() -> None:
    assert count_segments("a" * 160) == ("GSM-7", 1)
    assert count_segments("Reminder: " + "x" * 60 + " 👋") == ("UCS-2", 2)
