"""Every error a user or a rule can cause, in one place. Messages say what to do."""

from dataclasses import dataclass
from typing import Any


class PipewrightError(Exception):
    """Base of the errors the domain raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class ValidationFailed(PipewrightError):
    """Input refused before anything was saved; one message per offending field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))

    @classmethod
    def one(cls, field: str, message: str) -> "ValidationFailed":
        return cls([FieldError(field, message)])


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
