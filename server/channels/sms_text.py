"""How many SMS a text is: the GSM 03.38 7-bit default alphabet (with its extension table) or UCS-2, and the
segments a concatenated SMS is split into.

A text every character of which is in the default alphabet goes as GSM-7: 160 septets in one SMS, 153 per part
when concatenated (the user data header takes 7). The extension table's characters are an escape and a septet,
so they count 2. Any other character makes the whole text UCS-2: 70 UTF-16 code units in one SMS, 67 per part,
and a character outside the Basic Multilingual Plane (an emoji) is a surrogate pair, 2 units. Phones do not split
an escape sequence or a surrogate pair across two parts, so neither do we. National language shift tables
(Turkish, Spanish, Portuguese, Indian) are not used: gateways rarely offer them.
"""

from dataclasses import dataclass
from typing import Literal

MAX_SEGMENTS = 10  # longer texts are refused: carriers and phones reassemble no more reliably

# The default alphabet, in code order 0x00-0x7F (0x1B is the escape to the extension table, not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
# The extension table: each is sent as ESC + one septet.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

Encoding = Literal["GSM-7", "UCS-2"]
_LIMITS: dict[str, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}  # (single, per part)


@dataclass(frozen=True)
class SmsSegments:
    encoding: Encoding
    characters: int  # in the encoding's units: septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # what one segment holds: 160 / 70 for a single SMS, 153 / 67 per part of a longer one

    @property
    def over_limit(self) -> bool:
        return self.segments > MAX_SEGMENTS

    def summary(self) -> str:
        """'2 SMS segments (GSM-7, 161 characters)', as messages and the rule form say it."""
        plural = "" if self.segments == 1 else "s"
        return f"{self.segments} SMS segment{plural} ({self.encoding}, {self.characters:,} characters)"


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _units(text: str, encoding: Encoding) -> list[int]:
    """Each character's size in the encoding's units."""
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segments(text: str) -> SmsSegments:
    """The encoding a text is sent in and how many SMS it takes (0 for an empty text)."""
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    units = _units(text, encoding)
    single, per_part = _LIMITS[encoding]
    total = sum(units)
    if total <= single:
        return SmsSegments(encoding, total, 1 if total else 0, single)
    parts, filled = 1, 0
    for size in units:  # a character that does not fit whole starts the next part
        if filled + size > per_part:
            parts, filled = parts + 1, 0
        filled += size
    return SmsSegments(encoding, total, parts, per_part)


def limit_problem(text: str) -> str | None:
    """Why a text is too long to send, or None: "is 11 SMS segments (GSM-7, 1,683 characters); at most 10"."""
    counted = segments(text)
    if not counted.over_limit:
        return None
    return f"is {counted.summary()}; at most {MAX_SEGMENTS}"


def describe(text: str) -> str:
    """The segment count for the rule form: '1 SMS segment (GSM-7, 42 of 160 characters)'; when a character
    forces UCS-2, which one, since that is what a writer can change."""
    counted = segments(text)
    plural = "" if counted.segments == 1 else "s"
    size = (f"{counted.characters:,} of {counted.per_segment} characters" if counted.segments <= 1
            else f"{counted.characters:,} characters, {counted.per_segment} per segment")
    words = f"{counted.segments} SMS segment{plural} ({counted.encoding}, {size})"
    if counted.encoding == "UCS-2":
        first = next(c for c in text if c not in GSM7_BASIC and c not in GSM7_EXTENSION)
        words += f"; “{first}” is not in the GSM-7 alphabet"
    if counted.over_limit:
        words += f"; at most {MAX_SEGMENTS} are allowed"
    return words
