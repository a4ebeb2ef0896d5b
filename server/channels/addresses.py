"""Addresses as the exception and suppression lists compare them: emails lower-cased, phone numbers in E.164
where the number says its country, else as its digits."""

import re

import phonenumbers

from server.channels.outbox import normalised

_NOT_DIGITS = re.compile(r"[^0-9]")


def international(text: str) -> str | None:
    """A number written with its country code (+49 (0)30 5550-1200) in E.164, if it is a possible number; None
    otherwise. Lists compare what was written, so a possible number is enough (valid is for sending)."""
    try:
        number = phonenumbers.parse(text.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) \
        if phonenumbers.is_possible_number(number) else None


def normalise_phone(text: str) -> str:
    """+49 (0)30 5550-1200 → +493055501200. A number without a country code (no default region is configured)
    keeps its digits, with a leading + if it had one, so the same number written twice compares equal."""
    text = text.strip()
    if text.startswith("+") and (number := international(text)) is not None:
        return number
    digits = _NOT_DIGITS.sub("", text)
    return f"+{digits}" if text.startswith("+") and digits else digits


def normalise(kind: str, text: str) -> str:
    """An email address (`kind` "email") or phone number ("phone") as the lists store it."""
    return normalised(text) if kind == "email" else normalise_phone(text)
