"""The viewer's language and time zone, the message catalogues, and values formatted for people (Babel).

Faces set `current_locale` and `current_zone` per request (the admin's guard, from the user); code that
formats for the viewer reads them. Outside a request both are the instance's defaults, so texts the engine
stores are English and times UTC. The catalogues (web/locale) are installed by the face that loads them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from gettext import NullTranslations
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates, lists, numbers

from server.config import settings

LOCALES = ("en", "de")  # the admin's languages; a catalogue per language but English, the source language
EMPTY = "—"  # what a missing value shows as

current_locale: ContextVar[str] = ContextVar("current_locale", default="en")
current_zone: ContextVar[tzinfo] = ContextVar("current_zone", default=UTC)

_catalogues: dict[str, NullTranslations] = {}


def install(catalogues: dict[str, NullTranslations]) -> None:
    """The translations by locale (web/locale loads them from the .po files at start-up)."""
    _catalogues.update(catalogues)


def supported(locale: str | None) -> str | None:
    """The locale if the admin speaks it (`de`, `de_DE` and `de-DE` are German), else None."""
    if not locale:
        return None
    language = locale.replace("-", "_").split("_")[0].lower()
    return language if language in LOCALES else None


def zone_named(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@contextmanager
def viewing(locale: str, zone: str | tzinfo | None) -> Iterator[None]:
    """Format and translate for this viewer inside the block."""
    locale_token = current_locale.set(supported(locale) or "en")
    zone_token = current_zone.set(zone if isinstance(zone, tzinfo) else zone_named(zone))
    try:
        yield
    finally:
        current_zone.reset(zone_token)
        current_locale.reset(locale_token)


def N_(message: str) -> str:
    """Marks a text for the catalogue where it is defined; it is translated (gettext) where it is shown."""
    return message


def gettext(message: str) -> str:
    catalogue = _catalogues.get(current_locale.get())
    return catalogue.gettext(message) if catalogue else message


def ngettext(singular: str, plural: str, n: int) -> str:
    catalogue = _catalogues.get(current_locale.get())
    if catalogue:
        return catalogue.ngettext(singular, plural, n)
    return singular if n == 1 else plural


def _locale(locale: str | None) -> str:
    return locale or current_locale.get()


def local_time(value: datetime, zone: tzinfo | None = None) -> datetime:
    """The moment in the viewer's zone (a naive datetime is UTC, as the database stores it)."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(zone or current_zone.get())


def zone_label(moment: datetime) -> str:
    """CET, CEST, UTC; the zone's name where it has no letters of its own (+03)."""
    name = moment.tzname() or ""
    if name.isalpha():
        return name
    return getattr(moment.tzinfo, "key", name) or name


def when(value: Any, *, locale: str | None = None, zone: tzinfo | None = None) -> str:
    """A moment in the viewer's zone, the zone named: "Jan 13, 2026, 10:00 CET", "13.01.2026, 10:00 CET"."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if not isinstance(value, datetime):
        return format_date(value, locale=locale) if isinstance(value, date) else str(value)
    moment = local_time(value, zone)
    loc = _locale(locale)
    day = dates.format_date(moment, "medium", locale=loc)
    hour = dates.format_time(moment, "HH:mm", locale=loc)
    return f"{day}, {hour} {zone_label(moment)}"


def format_date(value: Any, *, locale: str | None = None) -> str:
    if value is None or value == "":
        return EMPTY
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        value = local_time(value).date()
    return dates.format_date(value, "medium", locale=_locale(locale))


def weekday(value: date, *, locale: str | None = None) -> str:
    """A day as a calendar column heads it: "Tue 13 Jan", "Di. 13. Jan."."""
    return dates.format_date(value, "EEE d MMM", locale=_locale(locale))


def decimal_of(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money(amount: Any, currency: str | None = None, *, locale: str | None = None) -> str:
    """2,800.00 € style: the amount with its currency in the locale's way; no amount shows "—", never "EUR"."""
    number = decimal_of(amount)
    if number is None:
        return EMPTY if amount is None or amount == "" else str(amount)
    code = (currency or settings().default_currency).upper()
    return numbers.format_currency(number, code, locale=_locale(locale))


def number(value: Any, *, locale: str | None = None) -> str:
    parsed = decimal_of(value)
    if parsed is None:
        return EMPTY if value is None or value == "" else str(value)
    return numbers.format_decimal(parsed, locale=_locale(locale))


def duration(value: Any, *, locale: str | None = None) -> str:
    """A length of time in words ("3 hours", "3 Stunden"); a number is seconds."""
    if value is None or value == "":
        return EMPTY
    span = value if isinstance(value, timedelta) else timedelta(seconds=float(value))
    seconds = int(abs(span.total_seconds()))
    parts = []
    units: tuple[tuple[Literal["day", "hour", "minute", "second"], int], ...] = (
        ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
    for unit, size in units:
        count, seconds = divmod(seconds, size)
        if count:  # each part exact: a huge threshold keeps Babel from rounding 10 days to "1 week"
            parts.append(dates.format_timedelta(timedelta(seconds=count * size), granularity=unit,
                                                threshold=10**9, format="long", locale=_locale(locale)))
    if not parts:
        return dates.format_timedelta(timedelta(0), granularity="second", format="long", locale=_locale(locale))
    return lists.format_list(parts, locale=_locale(locale))


def yes_no(value: bool) -> str:
    return gettext("yes") if value else gettext("no")
