"""Every error a user or a rule can cause, in one place. Messages say what to do."""

from dataclasses import dataclass
from typing import Any


class PipewrightError(Exception):
    """Base of the errors the domain raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


MAX_LISTED_ERRORS = 50  # an answer lists this many field errors and counts the rest


class ValidationFailed(PipewrightError):
    """Input refused before anything was saved; one message per offending field.

    Answers list the first MAX_LISTED_ERRORS and count the others: 10,000 bad fields must not
    make a megabyte of errors."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(summary([(e.field, e.message) for e in self.listed], self.unlisted))

    @property
    def listed(self) -> list[FieldError]:
        return self.errors[:MAX_LISTED_ERRORS]

    @property
    def unlisted(self) -> int:
        return max(0, len(self.errors) - MAX_LISTED_ERRORS)

    @classmethod
    def one(cls, field: str, message: str) -> "ValidationFailed":
        return cls([FieldError(field, message)])


def summary(errors: list[tuple[str, str]], unlisted: int) -> str:
    """`field: message; …; and 9950 more`."""
    text = "; ".join(f"{field}: {message}" for field, message in errors)
    return f"{text}; and {unlisted} more" if unlisted else text


def field_errors(exc: Any, prefix: str) -> list[FieldError]:
    """A pydantic ValidationError as field errors under `prefix` (`params.length`, `timing.amount`)."""
    errors = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        errors.append(FieldError(f"{prefix}.{path}" if path else prefix, err["msg"].removeprefix("Value error, ")))
    return errors


class NotFound(PipewrightError):
    def __init__(self, kind: str, ident: object) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident} does not exist")


class ActionError(PipewrightError):
    """An action could not do its work. Permanent: the run fails with this message."""


class TransientActionError(ActionError):
    """The action may succeed later (a peer is down): the run is retried with backoff."""


class LoopStopped(PipewrightError):
    """An automatic stage change would continue a runaway chain."""


class Forbidden(PipewrightError):
    """The acting user's role does not allow this. The message says what is needed, never what exists."""
