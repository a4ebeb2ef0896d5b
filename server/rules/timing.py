"""When a rule run is due: delays, date-field anchors, time of day and working time."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

UNITS = {"minutes": timedelta(minutes=1), "hours": timedelta(hours=1), "days": timedelta(days=1)}


def _hh_mm_or_none(value: str | None) -> str | None:
    if value:
        parse_hh_mm(value)
    return value or None


# A time of day "HH:MM" (checked), or None for none.
HhMm = Annotated[str | None, AfterValidator(_hh_mm_or_none)]


class Timing(BaseModel):
    """`kind`: immediately | after | before_field | after_field | at_field."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["immediately", "after", "before_field", "after_field", "at_field"] = "immediately"
    amount: int = Field(default=0, ge=0, le=100_000)
    unit: Literal["minutes", "hours", "days", "seconds"] = "minutes"
    field: str | None = None
    time_of_day: HhMm = None  # "HH:MM" in the company's (or responsible's) time zone
    working_time: Literal["company", "responsible"] | None = None

    @model_validator(mode="after")
    def _anchor_needs_field(self) -> "Timing":
        if self.kind.endswith("_field") and not self.field:
            raise ValueError(f"timing '{self.kind}' needs the date field to anchor on")
        if self.kind == "after" and self.amount == 0:
            raise ValueError("a delay needs an amount above 0 (or use 'immediately')")
        return self

    @property
    def delta(self) -> timedelta:
        unit = timedelta(seconds=1) if self.unit == "seconds" else UNITS[self.unit]
        return self.amount * unit

    def describe(self) -> str:
        span = f"{self.amount} {self.unit}"
        text = {
            "immediately": "immediately",
            "after": f"after {span}",
            "before_field": f"{span} before {self.field}",
            "after_field": f"{span} after {self.field}",
            "at_field": f"at {self.field}",
        }[self.kind]
        if self.time_of_day:
            text += f" at {self.time_of_day}"
        if self.working_time == "company":
            text += ", in working time"
        elif self.working_time == "responsible":
            text += ", in the responsible's working hours"
        return text


def parse_hh_mm(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a time of day (HH:MM)") from exc


def describe_start(start_in: int, unit: str, anchor: str = "", start_time: str | None = None) -> str:
    """A start in words: "in 2 days at 10:00", "3 days before close_date", "now"."""
    span = f"{abs(start_in)} {unit}"
    if not anchor:
        text = "now" if start_in == 0 else f"in {span}"
    elif start_in == 0:
        text = f"at {anchor}"
    else:
        text = f"{span} {'before' if start_in < 0 else 'after'} {anchor}"
    return f"{text} at {start_time}" if start_time else text


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class WorkingTime:
    """Work days (Mon=0), daily hours and holidays in a time zone."""

    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    start: str = "09:00"
    end: str = "18:00"
    holidays: frozenset[str] = frozenset()

    @classmethod
    def from_user(cls, user_tz: str, hours: dict[str, Any]) -> "WorkingTime":
        return cls(
            timezone=user_tz,
            days=tuple(hours.get("days", (0, 1, 2, 3, 4))),
            start=hours.get("start", "09:00"),
            end=hours.get("end", "18:00"),
        )

    def next_moment(self, moment: datetime) -> datetime:
        """The first instant at or after `moment` inside working time."""
        tz = zone(self.timezone)
        local = moment.astimezone(tz)
        start, end = parse_hh_mm(self.start), parse_hh_mm(self.end)
        if not self.days or start >= end:
            return moment
        for _ in range(400):
            day = local.date()
            if day.weekday() in self.days and day.isoformat() not in self.holidays:
                opens = datetime.combine(day, start, tz)
                closes = datetime.combine(day, end, tz)
                if local < opens:
                    return opens.astimezone(moment.tzinfo)
                if local < closes:
                    return local.astimezone(moment.tzinfo)
            local = datetime.combine(day + timedelta(days=1), time(0), tz)
        return moment


@dataclass(frozen=True)
class Due:
    at: datetime | None
    skip_reason: str | None = None


def as_moment(value: Any, tz_name: str, time_of_day: str | None) -> datetime | None:
    """A date or datetime field value as an aware instant (dates at the time of day, else 00:00)."""
    if value is None or value == "":
        return None
    tz = zone(tz_name)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value) if "T" in value or " " in value else date.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
        if time_of_day:
            local = moment.astimezone(tz)
            moment = datetime.combine(local.date(), parse_hh_mm(time_of_day), tz)
        return moment
    if isinstance(value, date):
        return datetime.combine(value, parse_hh_mm(time_of_day) if time_of_day else time(0), tz)
    return None


def compute_due(
    timing: Timing,
    *,
    base: datetime,
    element: dict[str, Any],
    company: WorkingTime,
    responsible: WorkingTime | None,
) -> Due:
    """The due instant of a run that became eligible at `base` (stage entry or the previous rule's end)."""
    tz_name = company.timezone
    if timing.kind == "immediately":
        at = base
    elif timing.kind == "after":
        at = base + timing.delta
        if timing.time_of_day:
            local = at.astimezone(zone(tz_name))
            at = datetime.combine(local.date(), parse_hh_mm(timing.time_of_day), zone(tz_name))
            if at < base + timing.delta:
                at += timedelta(days=1)
    else:
        anchor = as_moment(element.get(timing.field or ""), tz_name, timing.time_of_day)
        if anchor is None:
            return Due(None, f"the anchor date field '{timing.field}' is empty")
        at = {"before_field": anchor - timing.delta, "after_field": anchor + timing.delta}.get(timing.kind, anchor)
    if timing.working_time == "company":
        at = company.next_moment(at)
    elif timing.working_time == "responsible" and responsible is not None:
        at = responsible.next_moment(at)
    return Due(at)
