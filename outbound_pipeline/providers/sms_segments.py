"""Count SMS segments the way carriers bill them, so cost estimates match the invoice.

A message is GSM-7 when every character is in the GSM 03.38 basic table or its
extension table; one character outside both makes the whole message UCS-2.
Split messages lose room to the concatenation header (UDH): 153 septets per part
instead of 160 (GSM-7), 67 UTF-16 code units instead of 70 (UCS-2). Carriers never
split an escape sequence (extension characters take two septets) or a surrogate
pair across parts, so a part may end one unit short.
"""

from __future__ import annotations

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape character, so each costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# List price of one outbound SMS segment (Twilio, US); the offline channel and `outbound campaign preview` bill by it.
SMS_PRICE_PER_SEGMENT_USD = 0.0079


def is_gsm7(body: str) -> bool:
    """True when every character can be sent in the GSM-7 alphabet."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in body)


def _pack(units: list[int], single: int, part: int) -> int:
    """Parts needed for indivisible units (their sizes) given single- and multi-part capacity."""
    total = sum(units)
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


def count_segments(body: str) -> tuple[str, int]:
    """(encoding, segments) of an SMS body: "GSM-7" or "UCS-2", and how many parts carriers bill.

    An empty body is 0 segments: providers refuse to send it, so it costs nothing.
    """
    if not body:
        return "GSM-7", 0
    if is_gsm7(body):
        septets = [2 if ch in GSM7_EXTENSION else 1 for ch in body]
        return "GSM-7", _pack(septets, GSM7_SINGLE, GSM7_PART)
    # A character beyond the Basic Multilingual Plane (most emoji) is a surrogate pair: 2 units.
    code_units = [2 if ord(ch) > 0xFFFF else 1 for ch in body]
    return "UCS-2", _pack(code_units, UCS2_SINGLE, UCS2_PART)


def sms_cost(body: str, price_per_segment_usd: float = SMS_PRICE_PER_SEGMENT_USD) -> tuple[str, int, float]:
    """(encoding, segments, cost in USD) of an SMS body: every estimate and every simulated bill counts it this one way."""
    encoding, segments = count_segments(body)
    return encoding, segments, segments * price_per_segment_usd
