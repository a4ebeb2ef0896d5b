"""The import graph as docs/architecture.md draws it: every import points down the layers, none goes round a cycle.

Read from the source with `ast` (nothing is imported): imports at the top of a module, inside functions
and under `if TYPE_CHECKING:` all count, because an import hidden in a function is still a dependency.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Highest first. A module belongs to the layer of its longest matching prefix; a module no prefix
# matches fails the test, so a new top-level module is placed here on purpose, not by default.
LAYERS: dict[str, tuple[str, ...]] = {
    "composition": ("server.app", "server.cli"),
    # The live hub (server.live) is face-side: it serves subscriptions and registers itself with
    # server.events as the after-commit publisher, so nothing below it needs to know it exists.
    "faces": ("server.schema", "server.workers", "web", "server.http", "server.calendar_feed", "server.live",
              "server.hooks_routes", "server.mailin", "server.tracking_routes", "server.documents_routes",
              "server.operations_routes", "server.admin_live"),
    "services": ("server.services",),
    # The channels (outbox, delivery, transports, inbound parsing) sit beside the engine: rules send through
    # the outbox, and nothing in them knows a face.
    "engine": ("server.rules", "server.channels"),
    # events.emit is what the engine and the services call to record a live event: it writes a row.
    "data": (
        "server", "server.models", "server.migrations", "server.db", "server.database", "server.sqlite_immediate",
        "server.clock", "server.lease", "server.config", "server.errors", "server.events", "server.actor",
        "server.kinds", "server.files", "server.i18n",
    ),
}
RANK = {name: rank for rank, name in enumerate(reversed(LAYERS))}

# Imports the source does not spell out: the action registry imports every module of its package at
# run time (pkgutil + importlib), so the registry depends on each action.
REGISTRIES = {"server.rules.actions": ROOT / "server" / "rules" / "actions"}

# Deliberate exceptions, each with its reason.
ALLOWED_UPWARD: set[tuple[str, str]] = {
    # The migration re-hashes stored recovery codes with the hasher the login checks them with (the same argon2
    # parameters). It runs once, from the migrator; nothing imports it, so it can close no cycle.
    ("server.migrations.0004_recovery_codes_argon2", "server.services.passwords"),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for package in ("server", "web") for p in sorted((ROOT / package).rglob("*.py"))}


def layer_of(module: str) -> str | None:
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


def imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(our module, line) for every import in `path`, wherever it stands in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:  # `from server import clock`: the module server.clock
                    yield f"{base}.{alias.name}", node.lineno
                elif base in modules:
                    yield base, node.lineno
    for registry, folder in REGISTRIES.items():
        if module == registry:
            for action in sorted(folder.glob("*.py")):
                if action.name != "__init__.py":
                    yield f"{registry}.{action.stem}", 0


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {module it imports: line of the first such import}."""
    modules = our_modules()
    graph: dict[str, dict[str, int]] = {}
    for module, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imported(module, path, modules):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def a_path(graph: dict[str, dict[str, int]], start: str, members: set[str]) -> list[str]:
    """One way round the cycle through `start`, staying inside its component, for the failure message."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node]):
            if target == start:
                return paths[node] + [start]
            if target in members and target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    return [start]


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in our_modules() if layer_of(m) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS in {Path(__file__).name}): {unplaced}"


def test_imports_point_down_the_layers() -> None:
    graph = import_graph()
    upward = []
    for module, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            source_layer, target_layer = layer_of(module), layer_of(target)
            if source_layer is None or target_layer is None or (module, target) in ALLOWED_UPWARD:
                continue
            if RANK[target_layer] > RANK[source_layer]:
                upward.append(f"{module} ({source_layer}) imports {target} ({target_layer}) at line {line}")
    assert not upward, "imports pointing up the layers:\n" + "\n".join(upward)


def test_no_module_imports_itself_round_a_cycle() -> None:
    graph = import_graph()
    found = cycles(graph)
    described = [" -> ".join(a_path(graph, members[0], set(members))) + f"  (modules: {', '.join(members)})"
                 for members in found]
    assert not found, "import cycles:\n" + "\n".join(described)


def test_actions_reach_the_engine_only_through_the_run_context() -> None:
    """An action gets a `RunContext` (server/rules/context.py), which the engine implements: an action
    importing the engine is a second way in that the port does not describe (and a cycle with the registry)."""
    graph = import_graph()
    reaching = [
        f"{module} imports {target} at line {line}"
        for module, edges in sorted(graph.items()) if module.startswith("server.rules.actions.")
        for target, line in sorted(edges.items()) if target in ("server.rules.engine", "server.rules.dispatch")
    ]
    assert not reaching, "actions reaching past the port:\n" + "\n".join(reaching)


def test_only_the_engine_builds_causes() -> None:
    """Why an element enters a stage (`Cause`) is the engine's to say: faces and actions name a reason."""
    engine = ROOT / "server" / "rules" / "engine.py"
    outside = [
        f"{module} line {node.lineno}"
        for module, path in sorted(our_modules().items()) if path != engine
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Name) and node.id == "Cause") or (isinstance(node, ast.Attribute) and node.attr == "Cause")
        or (isinstance(node, ast.alias) and node.name == "Cause")
    ]
    assert not outside, "Cause used outside server/rules/engine.py: " + ", ".join(outside)
