"""User-caused errors as typed GraphQL results, and which unexpected errors are masked."""

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import strawberry
from graphql import GraphQLError

from server.errors import Forbidden, NotFound, PipewrightError, ValidationFailed, summary

T = TypeVar("T")
R = TypeVar("R")


@strawberry.type(name="FieldError")
class FieldErrorType:
    field: str
    message: str


@strawberry.type
class ValidationError:
    """The input was refused and nothing was saved; one entry per offending field (the first 50)."""

    message: str
    errors: list[FieldErrorType]
    error_count: int = strawberry.field(description="How many fields were refused; `errors` lists the first 50.")

    @classmethod
    def of(cls, exc: ValidationFailed) -> "ValidationError":
        errors = [FieldErrorType(field=graphql_path(e.field), message=e.message) for e in exc.listed]
        return cls(message=summary([(e.field, e.message) for e in errors], exc.unlisted), errors=errors,
                   error_count=len(exc.errors))


def graphql_path(field: str) -> str:
    """`action_type` → `actionType`: the argument as the client wrote it. Keys inside JSON
    arguments (`fields.close_date`, `params.length`) stay as they were sent."""
    head, dot, rest = field.partition(".")
    first, *others = head.split("_")
    return first + "".join(word.title() for word in others) + dot + rest


@strawberry.type
class NotFoundError:
    message: str

    @classmethod
    def of(cls, exc: NotFound) -> "NotFoundError":
        return cls(message=str(exc))


@strawberry.type
class ForbiddenError:
    """The acting user's role does not allow this; nothing was read or changed."""

    message: str

    @classmethod
    def of(cls, exc: Forbidden) -> "ForbiddenError":
        return cls(message=str(exc))


# What a mutation answers instead of its result when the user caused the error.
Refused = ValidationError | NotFoundError | ForbiddenError


# Two signatures, so that the result type comes from `work` (and `present`) and never from the resolver's declared
# union: with one signature mypy would solve T from the return context and then refuse `present`.
@overload
async def result_of(work: Callable[[], Awaitable[T]], present: None = None) -> T | Refused: ...


@overload
async def result_of(work: Callable[[], Awaitable[T]], present: Callable[[T], R]) -> R | Refused: ...


async def result_of(
    work: Callable[[], Awaitable[T]], present: Callable[[T], R] | None = None
) -> R | T | Refused:
    """Run a service call; errors the user caused become typed results instead of GraphQL errors.
    `present` turns the service's row into its GraphQL type (none: `work` already returns one)."""
    from server.schema.context import NotAuthenticated

    try:
        value = await work()
    except NotAuthenticated:
        raise
    except ValidationFailed as exc:
        return ValidationError.of(exc)
    except NotFound as exc:
        return NotFoundError.of(exc)
    except Forbidden as exc:
        return ForbiddenError.of(exc)
    return value if present is None else present(value)


def is_client_mistake(error: GraphQLError) -> bool:
    """The client's fault, not ours: a malformed or invalid query, a variable its scalar refused
    (before execution, so no path), or a domain error (a bad id, `first: 0`, a foreign cursor)."""
    original: Any = error.original_error
    if original is None or isinstance(original, (GraphQLError, PipewrightError)):
        return True
    return error.path is None and isinstance(original, (ValueError, TypeError))


def should_mask_error(error: GraphQLError) -> bool:
    """Mask crashes only: validation/syntax errors and the domain's own messages stay readable."""
    return not is_client_mistake(error)


ERROR_CODES: tuple[tuple[type[PipewrightError], str], ...] = (
    (ValidationFailed, "VALIDATION_FAILED"), (NotFound, "NOT_FOUND"), (Forbidden, "FORBIDDEN"),
)


def type_error(error: GraphQLError) -> None:
    """A domain error raised where the field's type has no union for it (a connection's `first`, a
    cursor) still says what it is: `extensions.code`, and for refused input the fields by their
    GraphQL names, as a ValidationError result would."""
    original = error.original_error
    for kind, code in ERROR_CODES:
        if isinstance(original, kind):
            extensions: dict[str, Any] = {"code": code}
            if isinstance(original, ValidationFailed):
                result = ValidationError.of(original)
                error.message = result.message
                extensions.update(errorCount=result.error_count,
                                  fields=[{"field": e.field, "message": e.message} for e in result.errors])
            error.extensions = {**(error.extensions or {}), **extensions}
            return


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def remove_suggestions(error: GraphQLError) -> None:
    """graphql-core's "Did you mean 'first'?" names arguments, types, enum values and input fields
    of the schema: production answers keep the error and drop the hint. Only graphql-core's own
    errors carry them; the domain's did-you-mean messages are meant for users and stay."""
    if not isinstance(error.original_error, PipewrightError) and "Did you mean" in error.message:
        error.message = _SUGGESTION.sub("", error.message)
