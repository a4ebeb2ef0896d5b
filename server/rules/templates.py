"""Sandboxed text templates: `{{deal.title}}`, `{{rules.<key>.code}}`, `{{now}}`, `{{today}}`."""

from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from server.errors import ActionError

MAX_OUTPUT_CHARS = 65_536

_env = ImmutableSandboxedEnvironment(
    autoescape=False, undefined=ChainableUndefined, finalize=lambda value: "" if value is None else value
)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Template:
    return _env.from_string(text)


def check(text: str) -> None:
    """Raise ValueError with a readable message if `text` is not a valid template."""
    try:
        _env.parse(text)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise ValueError(f"template error{f' on line {line}' if line else ''}: {exc.message}") from exc


def render(text: str, context: dict[str, Any]) -> str:
    """Render with no code execution and bounded output; errors become a failed run."""
    if "{" not in text:
        return text
    try:
        pieces: list[str] = []
        size = 0
        for piece in _compiled(text).generate(context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise ActionError(f"template output exceeds {MAX_OUTPUT_CHARS} characters")
            pieces.append(piece)
        return "".join(pieces)
    except TemplateError as exc:
        raise ActionError(f"template could not be rendered: {exc}") from exc
