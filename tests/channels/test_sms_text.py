"""Counting SMS segments: GSM-7 (160 in one SMS, 153 per part, extension characters 2 septets) or UCS-2 as soon
as one character is outside the GSM 03.38 alphabet (70 / 67 UTF-16 code units, an emoji 2)."""

import pytest

from server.channels.sms_text import MAX_SEGMENTS, SmsSegments, describe, limit_problem, segments


@pytest.mark.parametrize(("length", "expected"), [(1, 1), (160, 1), (161, 2), (153 * 2, 2), (153 * 2 + 1, 3),
                                                  (153 * 10, 10), (153 * 10 + 1, 11)])
def test_gsm7_texts_take_160_characters_alone_and_153_per_part(length: int, expected: int):
    counted = segments("a" * length)

    assert (counted.encoding, counted.characters, counted.segments) == ("GSM-7", length, expected)
    assert counted.per_segment == (160 if expected == 1 else 153)


def test_accents_of_the_gsm_alphabet_stay_gsm7():
    counted = segments("é" * 160)

    assert counted == SmsSegments(encoding="GSM-7", characters=160, segments=1, per_segment=160)
    assert segments("Café für Ünal, Señor, à Göteborg: ¿§@£¥ΔΩÉÇø").encoding == "GSM-7"


def test_one_character_outside_the_alphabet_makes_the_text_ucs2():
    assert segments("ł" + "a" * 69) == SmsSegments(encoding="UCS-2", characters=70, segments=1, per_segment=70)
    assert segments("ł" + "a" * 70) == SmsSegments(encoding="UCS-2", characters=71, segments=2, per_segment=67)
    assert segments("ł" * 67 * 2).segments == 2
    assert segments("ł" * (67 * 2 + 1)).segments == 3
    assert segments("ç").encoding == "UCS-2"  # only the capital Ç is in the alphabet
    assert segments("ú").encoding == "UCS-2"  # ù is, ú is not


def test_extension_characters_count_two_septets():
    assert segments("€") == SmsSegments(encoding="GSM-7", characters=2, segments=1, per_segment=160)
    assert segments("€" * 80).segments == 1
    assert segments("€" * 80 + "a").segments == 2
    assert segments("^{}\\[~]|€").characters == 18


def test_an_extension_character_is_not_split_across_two_parts():
    # 152 septets, then "€" (2) would straddle the first part's end: it starts the second part.
    counted = segments("a" * 152 + "€" + "a" * 152)

    assert counted.characters == 306 and counted.segments == 3  # 306 septets would fit in two parts otherwise


def test_an_emoji_counts_two_utf16_code_units():
    assert segments("😀") == SmsSegments(encoding="UCS-2", characters=2, segments=1, per_segment=70)
    assert segments("😀" * 35).segments == 1
    assert segments("😀" * 35 + "a").segments == 2
    # 134 units would fill two parts exactly, but the pair at units 67-68 would straddle them: it moves on.
    assert segments("a" * 66 + "😀" + "a" * 66).segments == 3


def test_the_empty_text_is_no_sms():
    assert segments("").segments == 0


def test_a_text_over_the_limit_says_how_long_it_is():
    assert MAX_SEGMENTS == 10
    assert limit_problem("a" * 1530) is None
    assert limit_problem("a" * 1683) == "is 11 SMS segments (GSM-7, 1,683 characters); at most 10"


def test_the_rule_form_note_names_the_character_that_forces_ucs2():
    assert describe("Hello") == "1 SMS segment (GSM-7, 5 of 160 characters)"
    assert describe("a" * 161) == "2 SMS segments (GSM-7, 161 characters, 153 per segment)"
    assert describe("Dzień dobry") == (
        "1 SMS segment (UCS-2, 11 of 70 characters); “ń” is not in the GSM-7 alphabet")
