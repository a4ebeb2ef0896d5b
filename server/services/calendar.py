"""A user's activities as an iCalendar (RFC 5545) feed, written by hand: calendar clients poll it.

Every activity is a VEVENT with a stable UID and a SEQUENCE that moves on each change, so a
client updates the event instead of adding a second one. VEVENT allows only the statuses
TENTATIVE, CONFIRMED and CANCELLED: a completed activity stays CONFIRMED, its summary starts
with "Done: " and X-PIPEWRIGHT-COMPLETED carries the time; it has no alarm. Without a
METHOD property, DTSTAMP is the event's last modification (RFC 5545 3.8.7.2).
"""

import re
from dataclasses import dataclass
from collections.abc import Iterable
from datetime import UTC, datetime

from server.models import Activity, Booking, Resource, Service, User

PRODID = "-//pipewright//pipewright calendar 1.0//EN"
KIND_NAMES = {"call": "Call", "meeting": "Meeting", "activity": "Activity", "todo": "To-do"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def utc(moment: datetime) -> str:
    """DATE-TIME in UTC form: 20240601T083000Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def text(value: str) -> str:
    """A TEXT value: backslash, semicolon, comma and line breaks escaped, other control characters dropped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _CONTROL.sub("", value)
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def fold(line: str) -> str:
    """Content lines longer than 75 octets continue on lines starting with a space, never inside a character."""
    if len(line.encode()) <= 75:
        return line
    parts: list[str] = []
    current: list[str] = []
    size, limit = 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, 74  # the leading space counts
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)


def _event(activity: Activity, about: str | None) -> list[str]:
    summary = activity.subject if not activity.completed else f"Done: {activity.subject}"
    description = activity.description
    if about:
        description = f"{description}\n\n{about}" if description else about
    lines = [
        "BEGIN:VEVENT",
        f"UID:activity-{activity.id}@pipewright",
        f"DTSTAMP:{utc(activity.updated_at)}",
        f"CREATED:{utc(activity.created_at)}",
        f"LAST-MODIFIED:{utc(activity.updated_at)}",
        f"SEQUENCE:{activity.sequence}",
        f"DTSTART:{utc(activity.start_at)}",
        f"DTEND:{utc(activity.end_at)}",
        f"SUMMARY:{text(summary)}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{text(description)}")
    lines += [
        f"CATEGORIES:{text(KIND_NAMES.get(activity.kind, activity.kind))}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
    ]
    if activity.important:
        lines.append("PRIORITY:1")
    if activity.completed and activity.completed_at:
        lines.append(f"X-PIPEWRIGHT-COMPLETED:{utc(activity.completed_at)}")
    if activity.reminder_minutes is not None and not activity.completed:
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{text(activity.subject)}",
            f"TRIGGER:-PT{activity.reminder_minutes}M" if activity.reminder_minutes else "TRIGGER:PT0M",
            "END:VALARM",
        ]
    lines.append("END:VEVENT")
    return lines


def _booking_event(booking: Booking, resource: Resource, service: Service | None, about: str | None) -> list[str]:
    """A booking of the user as an employee resource. A cancelled booking stays in the feed as CANCELLED (SEQUENCE
    1), so a client that had it removes it instead of keeping a stale event."""
    cancelled = booking.status == "cancelled"
    changed = booking.cancelled_at if cancelled and booking.cancelled_at else booking.created_at
    summary = f"Booked: {service.name}" if service else f"Booked: {resource.name}"
    description = "\n".join(part for part in (f"Resource: {resource.name}", about) if part)
    return [
        "BEGIN:VEVENT",
        f"UID:booking-{booking.id}@pipewright",
        f"DTSTAMP:{utc(changed)}",
        f"CREATED:{utc(booking.created_at)}",
        f"LAST-MODIFIED:{utc(changed)}",
        f"SEQUENCE:{1 if cancelled else 0}",
        f"DTSTART:{utc(booking.start_at)}",
        f"DTEND:{utc(booking.end_at)}",
        f"SUMMARY:{text(summary)}",
        f"DESCRIPTION:{text(description)}",
        "CATEGORIES:Booking",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        f"TRANSP:{'TRANSPARENT' if cancelled else 'OPAQUE'}",
        "END:VEVENT",
    ]


@dataclass(frozen=True)
class BookedSlot:
    """A booking as the feed shows it: with its resource, service and the element it is for."""

    booking: Booking
    resource: Resource
    service: Service | None = None
    about: str | None = None


def render(user: User, activities: Iterable[Activity], *, about: dict[int, str] | None = None,
           bookings: Iterable[BookedSlot] = ()) -> str:
    """The VCALENDAR text (CRLF line ends, folded). `about`: activity id → the element it belongs to."""
    about = about or {}
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{text(f'pipewright: {user.name}')}",
        "X-WR-TIMEZONE:UTC",
    ]
    for activity in activities:
        lines += _event(activity, about.get(activity.id))
    for slot in bookings:
        lines += _booking_event(slot.booking, slot.resource, slot.service, slot.about)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
