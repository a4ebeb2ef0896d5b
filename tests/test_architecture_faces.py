"""Thin faces: the admin (web/) calls the services, as the GraphQL resolvers do, and knows no models or engine.

The domain's knowledge (lane numbering, the names a template may use, moving a rule, the operators of a
condition) lives once below the faces; a face that queried models or the engine would grow its own copy.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"

# What a face may import from the server package: the services it calls, and the face-neutral plumbing.
# No exception is granted for server.models or server.rules: what the admin shows of them comes through a service.
ALLOWED = ("server.services", "server.errors", "server.config", "server.http", "server.i18n")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, those inside functions included."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            if node.module == "server":  # `from server import models` imports server.models
                found += [(node.lineno, f"server.{alias.name}") for alias in node.names]
    return found


def _allowed(module: str) -> bool:
    if module != "server" and not module.startswith("server."):
        return True
    return module == "server" or any(module == a or module.startswith(f"{a}.") for a in ALLOWED)


def test_admin_views_import_no_models_and_no_engine() -> None:
    modules = sorted(WEB.rglob("*.py"))
    assert modules, "no modules under web/"
    upward = [f"{path.relative_to(ROOT)}:{line} imports {module}"
              for path in modules for line, module in _imports(path) if not _allowed(module)]
    assert upward == [], "the admin must call services, not models or the engine:\n" + "\n".join(upward)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The walk above must catch the spellings a view could use, or the test above could not fail."""
    sample = tmp_path / "view.py"
    sample.write_text("from server.models import Rule\nimport server.rules.engine\nfrom server import models\n"
                      "def f():\n    from server.rules import elements\n"
                      "from server.services import rules\nfrom server.errors import NotFound\n")
    refused = [module for _, module in _imports(sample) if not _allowed(module)]
    assert refused == ["server.models", "server.rules.engine", "server.models", "server.rules"]
