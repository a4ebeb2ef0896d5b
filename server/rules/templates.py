"""Sandboxed text templates: `{{deal.title}}`, `{{rules.<key>.code}}`, `{{now}}`, `{{today}}`.

A render is bounded: loop steps, characters built, characters output and wall time per render,
each checked before the work is done where the work could be large (`center(100000000)`,
`'%99999999s' % x`, `'x' * 10**9`), and renders run off the event loop (`render_async`).
Names are checked when a rule is saved (`unknown_names`); at run time a value that is not there
fails the run naming the placeholder, unless the template says what to do (`|default`, `{% if %}`).
"""

import asyncio
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any, TypeVar

from jinja2 import Template, TemplateError, UndefinedError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import _PassArg
from jinja2.visitor import NodeTransformer

from server.errors import ActionError
from server.rules.placeholders import Record, resolve

MAX_OUTPUT_CHARS = 65_536  # what a render may output, and the longest string it may build
MAX_BUILT_CHARS = 1_000_000  # all the strings a render builds together (filters, operators, methods)
MAX_LOOP_STEPS = 10_000  # loop iterations and items mapped or selected, all loops of a render together
MAX_RENDER_MS = 1_000
MAX_INT_BITS = 10_000  # about 3,000 digits
MAX_TEMPLATE_CHARS = 20_000
# Blocks a text template does not need; macros and recursive loops could repeat without a loop step.
REFUSED_TAGS = {nodes.Macro: "macro", nodes.CallBlock: "call", nodes.Include: "include",
                nodes.Import: "import", nodes.FromImport: "from … import", nodes.Extends: "extends"}
WHEN_EMPTY = "|default('')"


class TemplateLimit(ActionError):
    """A render went over one of its bounds: permanent, the same template fails the same way."""


# ---------------------------------------------------------------- the budget of one render


@dataclass
class _Budget:
    deadline: float
    steps: int = 0
    built: int = 0
    output: int = 0

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_LOOP_STEPS:
            raise TemplateLimit(f"template limit: more than {MAX_LOOP_STEPS} loop steps in one render")
        self.tick()

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimit(f"template limit: the render took longer than {MAX_RENDER_MS} ms")

    def fits(self, size: int, what: str) -> None:
        """Refuse a string (or list) of `size` before it is built."""
        if size > MAX_OUTPUT_CHARS:
            raise TemplateLimit(
                f"template limit: {what} would build {size} characters, more than {MAX_OUTPUT_CHARS}"
            )
        if self.built + size > MAX_BUILT_CHARS:
            raise TemplateLimit(f"template limit: the render builds more than {MAX_BUILT_CHARS} characters")
        self.tick()

    def build(self, size: int, what: str) -> None:
        self.fits(size, what)
        self.built += size

    def emit(self, size: int) -> None:
        self.output += size
        if self.output > MAX_OUTPUT_CHARS:
            raise TemplateLimit(f"template output exceeds {MAX_OUTPUT_CHARS} characters")
        self.tick()


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _current() -> _Budget:
    budget = _budget.get()
    if budget is None:  # a template object used outside `render`: give it a budget of its own
        budget = _Budget(deadline=time.monotonic() + MAX_RENDER_MS / 1000)
        _budget.set(budget)
    return budget


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


_Value = TypeVar("_Value")


def _built(value: _Value, what: str) -> _Value:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimit(f"template limit: {what} gives a number of more than {MAX_INT_BITS} bits")
    if isinstance(value, (str, bytes, list, tuple)):
        _current().build(len(value), what)
    return value


def _counted(items: Iterable[Any], what: str) -> Iterator[Any]:
    budget = _current()
    for item in items:
        budget.step()
        if isinstance(item, (str, bytes, list, tuple)):
            budget.build(len(item), what)
        yield item


# ---------------------------------------------------------------- sizes predicted before the work


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_FORMAT_SPEC = re.compile(r"(\d+)?[,_]?(?:\.(\d+))?[a-zA-Z%]?$")
_NUMBER_TEXT = 330  # the longest a float or a bounded int prints without width or precision


def _printf_size(fmt: str, args: Any) -> int:
    """An upper bound of `fmt % args`: every conversion at its widest."""
    values = list(args.values()) if isinstance(args, Mapping) else list(args) if isinstance(args, tuple) else [args]
    widest = max([len(str(v)) for v in values] + [_NUMBER_TEXT])
    stars = max([v for v in values if isinstance(v, int)] + [0])
    size = len(fmt)
    for match in _PRINTF.finditer(fmt):
        width, precision = (stars if part == "*" else int(part or 0) for part in match.groups())
        size += width + precision + widest
    return size


_GROWING = frozenset({"center", "ljust", "rjust", "zfill", "indent", "expandtabs", "wordwrap", "replace", "format"})


def _text_size_check(name: str, value: Any, *args: Any, **kwargs: Any) -> None:
    """Refuse a str method or filter whose result would be too long, before building it."""
    if name not in _GROWING:
        return
    text = str(value)
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width", 80)
        size = max(len(text), width if isinstance(width, int) else 0)
    elif name == "indent":
        width = args[0] if args else kwargs.get("width", 4)
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        size = len(text) + (text.count("\n") + 1) * pad
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        size = len(text) + text.count("\t") * (tab if isinstance(tab, int) else 0)
    elif name == "wordwrap":
        wrap = args[2] if len(args) > 2 else kwargs.get("wrapstring") or "\n"
        size = len(text) * (1 + len(str(wrap)))
    elif name == "replace":
        old, new = (str(a) for a in args[:2])
        count = args[2] if len(args) > 2 else kwargs.get("count")
        hits = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            hits = min(hits, count)
        size = len(text) + hits * max(0, len(new) - len(old))
    elif name == "format":
        size = _printf_size(text, kwargs or args)
    else:
        return
    _current().fits(size, name)


def _bounded_filter(name: str, original: Any) -> Any:
    """A filter that checks its result size first (where it can blow up) and counts what it builds."""
    pass_arg = _PassArg.from_obj(original)

    @wraps(original)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        user_args = args[1:] if pass_arg is not None else args
        if user_args:
            _text_size_check(name, *user_args, **kwargs)
        if name in ("batch", "slice") and len(user_args) > 1 and isinstance(user_args[1], int):
            _current().fits(max(user_args[1], 0), name)
        if name == "join" and user_args:
            items = list(_counted(user_args[0], name))
            separator = user_args[1] if len(user_args) > 1 else kwargs.get("d", "")
            _current().fits(sum(len(str(i)) for i in items) + len(str(separator)) * max(len(items) - 1, 0), name)
            args = (*args[: len(args) - len(user_args)], items, *user_args[1:])
        result = original(*args, **kwargs)
        if isinstance(result, Iterator):
            return _counted(result, name)
        return _built(result, f"the filter {name}")

    return bounded


class _BoundedFormatter(SandboxedFormatter):
    """`'{:>99999999}'.format(x)`: each field's width checked before it is built."""

    size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        match = _FORMAT_SPEC.search(format_spec)
        if match:
            width, precision = (int(part or 0) for part in match.groups())
            _current().fits(self.size + max(width, precision), "format")
        text = super().format_field(value, format_spec)
        self.size += len(text)
        _current().fits(self.size, "format")
        return text


# ---------------------------------------------------------------- values that are not there


class Missing(Undefined):
    """A name or field the run does not have. Printing, iterating or computing with it fails the
    run (the message names the placeholder); `{% if x %}`, `x is defined`, `x|default(...)` and
    `x == ...` work, and so does going deeper (`deal.company.name` with no company)."""

    __slots__ = ()
    __iter__ = __str__ = __len__ = __contains__ = Undefined._fail_with_undefined_error

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        return self

    # Undefined declares `[]` as always failing (-> Never); going deeper is what Missing is for.
    def __getitem__(self, name: str) -> "Missing":  # type: ignore[override]
        return self

    def __hash__(self) -> int:
        return id(type(self))


# ---------------------------------------------------------------- the environment


class _Bounding(NodeTransformer):
    """Routes every loop, output and `~` of a parsed template through the budget."""

    # generic_visit transforms the children in place and returns the node it was given.
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal("loop_steps", node.iter)
        return node

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_internal("emitted", child) for child in node.nodes]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal("joined", nodes.List(node.nodes))


def _internal(name: str, argument: nodes.Node) -> nodes.Call:  # For.iter is typed Node, not Expr
    return nodes.Call(nodes.EnvironmentAttribute(name), [argument], [], None, None)


def _internal_hook(method: Any) -> Any:
    method.template_internal = True
    return method


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with every repetition and every growing string counted against the budget."""

    intercepted_binops = frozenset({"*", "%", "**", "+"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=Missing)
        self.globals["range"] = self._range
        self.globals.pop("lipsum", None)  # lipsum(n) builds n paragraphs
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    @staticmethod
    def _range(*args: int) -> range:
        steps = range(*args)
        if len(steps) > MAX_LOOP_STEPS:
            raise TemplateLimit(f"template limit: range() of {len(steps)} items, more than {MAX_LOOP_STEPS}")
        return steps

    @_internal_hook
    def loop_steps(self, items: Any) -> Any:
        if isinstance(items, Undefined):
            return items  # iterating it fails with the placeholder's name
        return _counted(items, "a loop")

    @_internal_hook
    def emitted(self, value: Any) -> str:
        text = "" if value is None else str(value)
        _current().emit(len(text))
        return text

    @_internal_hook
    def joined(self, parts: list[Any]) -> str:
        texts = ["" if p is None else str(p) for p in parts]
        _current().build(sum(len(t) for t in texts), "~")
        return "".join(texts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _current()
        budget.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                    budget.fits(len(seq) * max(times, 0), "*")
            if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"template limit: * gives a number of more than {MAX_INT_BITS} bits")
        elif operator == "**" and _is_int(left) and _is_int(right) and abs(left) > 1 and right > 0:
            if right * left.bit_length() > MAX_INT_BITS:
                raise TemplateLimit(f"template limit: ** gives a number of more than {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            budget.fits(_printf_size(left, right), "%")
        elif operator == "+" and isinstance(left, (str, list, tuple)) and type(left) is type(right):
            budget.fits(len(left) + len(right), "+")
        return _built(super().call_binop(context, operator, left, right), operator)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        if getattr(__obj, "template_internal", False):
            return __obj(*args)
        _current().tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(__obj, "__name__", "")
            if name in ("translate", "maketrans"):
                raise TemplateLimit(f"template limit: str.{name} is not available in templates")
            if name == "join" and args:
                items = list(_counted(args[0], "join"))
                _current().fits(sum(_size(i) for i in items) + len(owner) * max(len(items) - 1, 0), "join")
                args = (items, *args[1:])
            else:
                _text_size_check(name, owner, *args, **kwargs)
        return _built(super().call(__context, __obj, *args, **kwargs), getattr(__obj, "__name__", "a call"))

    def wrap_str_format(self, value: Any) -> Any:
        if super().wrap_str_format(value) is None:
            return None
        text = value.__self__

        def bounded_map(mapping: Mapping[str, Any]) -> str:
            return _built(_BoundedFormatter(self).vformat(text, (), mapping), "format_map")

        def bounded(*args: Any, **kwargs: Any) -> str:
            return _built(_BoundedFormatter(self).vformat(text, args, kwargs), "format")

        return bounded_map if value.__name__ == "format_map" else bounded


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_env = BoundedEnvironment()


# ---------------------------------------------------------------- checking at save time


def _parse(text: str) -> nodes.Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"template is longer than {MAX_TEMPLATE_CHARS} characters")
    try:
        tree = _env.parse(text)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        raise ValueError(f"template error{f' on line {line}' if line else ''}: {exc.message}") from exc
    except (RecursionError, MemoryError):
        raise ValueError("template is nested too deeply") from None
    for kind, tag in REFUSED_TAGS.items():
        found = next(tree.find_all(kind), None)
        if found is not None:
            raise ValueError(f"template error on line {found.lineno}: {{% {tag} %}} is not available in rule templates")
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise ValueError(
                f"template error on line {loop.lineno}: recursive loops are not available in rule templates"
            )
    return tree


def check(text: str) -> None:
    """Raise ValueError with a readable message if `text` is not a valid template."""
    _parse(text)


@dataclass
class Placeholder:
    """A dotted name a template reads (`deal.company.name`), and whether it says what to do when empty."""

    path: tuple[str, ...]
    guarded: bool = False
    line: int = 0
    text: str = field(init=False)

    def __post_init__(self) -> None:
        self.text = ".".join(self.path)


def placeholders(text: str) -> list[Placeholder]:
    """Every name path a template reads from the context, longest first for each expression."""
    tree = _parse(text)
    roots = find_undeclared_variables(tree)
    found: list[Placeholder] = []
    guarded: set[int] = set()
    for node in tree.find_all((nodes.Filter, nodes.Test, nodes.If, nodes.CondExpr)):
        # A `{% filter default(...) %}` block has no node: it filters the block's text, guarding no name.
        if isinstance(node, nodes.Filter) and node.name in ("default", "d") and node.node is not None:
            guarded.update(id(n) for n in node.node.find_all(nodes.Expr))
            guarded.add(id(node.node))
        elif isinstance(node, nodes.Test) and node.name in ("defined", "undefined", "none"):
            guarded.update(id(n) for n in node.node.find_all(nodes.Expr))
            guarded.add(id(node.node))
        elif isinstance(node, (nodes.If, nodes.CondExpr)):
            guarded.update(id(n) for n in node.test.find_all(nodes.Expr))
            guarded.add(id(node.test))
    inner: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if id(node) in inner:
            continue
        path = _path(node, inner)
        if path and path[0] in roots:
            found.append(Placeholder(path, id(node) in guarded, node.lineno))
    return found


def _path(node: nodes.Node, inner: set[int]) -> tuple[str, ...] | None:
    """`deal.company.name` as ('deal', 'company', 'name'); None for `x[y]` with a computed key."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            parts.append(node.name)
            return tuple(reversed(parts))
        elif isinstance(node, nodes.Getitem):
            parts.clear()  # below a computed key: only the part before it is known
        else:
            return None
        node = node.node
        inner.add(id(node))


def unknown_names(text: str, shape: Record) -> list[str]:
    """One message per placeholder naming something the run will not have, with a did-you-mean."""
    problems: list[str] = []
    for placeholder in placeholders(text):
        _, message = resolve(shape, placeholder.path)
        if message and message not in problems:
            problems.append(f"{{{{{placeholder.text}}}}}: {message}")
    return problems


# ---------------------------------------------------------------- rendering


@lru_cache(maxsize=1024)
def _compiled(text: str) -> Template:
    return _env.from_string(_Bounding().visit(_parse(text)))


def render(text: str, context: dict[str, Any]) -> str:
    """Render with no code execution and bounded work; errors fail the run (permanently)."""
    if "{" not in text:
        return text
    try:
        template = _compiled(text)
    except ValueError as exc:  # saved before a check refused it, or refused by a newer check
        raise ActionError(f"template could not be rendered: {exc}") from exc
    token = _budget.set(_Budget(deadline=time.monotonic() + MAX_RENDER_MS / 1000))
    try:
        return template.render(context)
    except ActionError:
        raise
    except UndefinedError as exc:
        raise ActionError(_missing_message(text, context, exc)) from exc
    except TemplateError as exc:
        raise ActionError(f"template could not be rendered: {exc}") from exc
    except (RecursionError, MemoryError, OverflowError) as exc:
        raise TemplateLimit(f"template limit: {type(exc).__name__} ({exc})") from exc
    except Exception as exc:  # a value the template cannot compute with (1/0, 'a' - 1): the same each time
        raise ActionError(f"template could not be rendered: {type(exc).__name__}: {exc}") from exc
    finally:
        _budget.reset(token)


async def render_async(text: str, context: dict[str, Any]) -> str:
    """`render` off the event loop: a render that uses its whole time budget blocks no request."""
    if "{" not in text:
        return text
    return await asyncio.to_thread(render, text, context)


def _missing_message(text: str, context: dict[str, Any], exc: UndefinedError) -> str:
    """Which placeholder was not there, and what to write instead."""
    for placeholder in sorted(placeholders(text), key=lambda p: p.guarded):
        value: Any = context
        for index, part in enumerate(placeholder.path):
            where = ".".join(placeholder.path[:index])
            if value is None and index > 0:
                return (f"{{{{{placeholder.text}}}}}: {where} is empty; write {{{{{placeholder.text}{WHEN_EMPTY}}}}} "
                        f"or put it inside {{% if {where} %}}…{{% endif %}}")
            if not isinstance(value, Mapping):
                break
            if part not in value:
                if placeholder.path[0] == "rules" and 0 < index <= 2:
                    what = f"rule '{placeholder.path[1]}' has no output '{placeholder.path[-1]}' in this stage run"
                else:
                    what = f"{where} has no '{part}'" if where else f"there is no '{part}'"
                return (f"{{{{{placeholder.text}}}}}: {what}; write {{{{{placeholder.text}{WHEN_EMPTY}}}}} "
                        f"to allow it to be empty")
            value = value[part]
    return f"template could not be rendered: {exc.message}"
