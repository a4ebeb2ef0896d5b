"""The closed sets of words the domain is built from: run statuses, element types, roles, lanes, stage semantics.

Each is a `StrEnum`, so a member *is* its string: the database columns, the JSON of events and the GraphQL
wire values stay exactly the words stored today, while code names them once and mypy checks the spelling.
"""

from enum import StrEnum


class RunStatus(StrEnum):
    """A rule run's life: scheduled → queued → running → one of the final statuses (or waiting, then final)."""

    scheduled = "scheduled"  # due_at set, or NULL while it waits for the rule above (after previous)
    queued = "queued"  # claimed and sent to the worker, under a lease
    running = "running"  # an attempt is executing, under a lease
    waiting = "waiting"  # a blocking action holds its lane until released or timed out
    succeeded = "succeeded"
    skipped = "skipped"
    failed = "failed"
    cancelled = "cancelled"
    stopped = "stopped"  # the loop guard ended a Change stage run


class StageRunStatus(StrEnum):
    """One stay of an element in a stage."""

    active = "active"
    left = "left"
    deleted = "deleted"  # the element was deleted while in the stage


class ElementType(StrEnum):
    """What a pipeline holds; runs, timeline, audit and events name an element by (type, id)."""

    lead = "lead"
    deal = "deal"


class Role(StrEnum):
    """A user's role: admin configures, manager sees every element, employee sees the elements in their charge."""

    admin = "admin"
    manager = "manager"
    employee = "employee"


class Lane(StrEnum):
    """How a rule runs relative to the rule above it in its stage."""

    parallel = "parallel"
    after_previous = "after_previous"


class StageSemantic(StrEnum):
    """What reaching a stage means for the element."""

    in_progress = "in_progress"
    success = "success"
    failure = "failure"


class Channel(StrEnum):
    """How a message travels: outbound by email or SMS; inbound also by call, chat or web form."""

    email = "email"
    sms = "sms"
    call = "call"
    chat = "chat"
    form = "form"


class Direction(StrEnum):
    outbound = "outbound"  # we send it (an outbox row, then delivery attempts)
    inbound = "inbound"  # the customer's: mail received, a call, a chat message, a form


class MessageStatus(StrEnum):
    """An outbound message's delivery; inbound messages are `received`."""

    queued = "queued"  # waiting for its (next) attempt at due_at
    sending = "sending"  # an attempt holds the lease
    sent = "sent"  # the SMTP peer or gateway accepted it
    delivered = "delivered"  # a delivery receipt said it arrived
    bounced = "bounced"  # a bounce (DSN) or receipt said it did not
    failed = "failed"  # refused for good, or out of attempts
    suppressed = "suppressed"  # not sent: the address is on the suppression list
    received = "received"


class AddressKind(StrEnum):
    email = "email"
    phone = "phone"


class EmailType(StrEnum):
    """What a client's email address is for; Send email picks one by type (or any)."""

    work = "work"
    home = "home"
    other = "other"


class PhoneType(StrEnum):
    """What a client's phone number is for; Send SMS picks one by type (or any)."""

    work = "work"
    mobile = "mobile"
    home = "home"
    other = "other"


class AddressType(StrEnum):
    """Every word an email address or phone number may be typed with (EmailType and PhoneType together): the
    one enum of the API's `ClientAddress.type`."""

    work = "work"
    home = "home"
    mobile = "mobile"
    other = "other"


class ResourceKind(StrEnum):
    """What a bookable resource is: a person (then it books their calendar) or a thing (a room, a car)."""

    employee = "employee"
    thing = "thing"


class BookingStatus(StrEnum):
    """Only active bookings hold their slot."""

    active = "active"
    cancelled = "cancelled"
