"""Test-only actions, found the way every action is: this folder joins the actions package's path.

Imported by a worker process started as `python -m dramatiq server.workers.actors tests.workers.slow_actions`,
and by the test process through `installed()`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
import sys

from server.rules import actions
from server.rules.actions import registry

HERE = str(Path(__file__).resolve().parent)


def install() -> None:
    if HERE not in actions.__path__:
        actions.__path__.append(HERE)
        registry.cache_clear()


@contextmanager
def installed() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        actions.__path__.remove(HERE)
        sys.modules.pop("server.rules.actions.slow_comment", None)
        registry.cache_clear()


install()
