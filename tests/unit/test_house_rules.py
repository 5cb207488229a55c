"""Rules of the layout that a reviewer would otherwise have to remember: the library does not
import its shells, and the app `taskstream api` serves carries no benchmark routes."""

from __future__ import annotations

import ast
from pathlib import Path

import taskstream
from taskstream.app import create_app
from taskstream.settings import Settings
from taskstream.web.guard import PUBLIC_PATHS

LIBRARY = Path(taskstream.__file__).parent
SHELLS = ("consumers", "workers", "loadtest")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_only_the_cli_imports_the_shells() -> None:
    offenders = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        relative = path.relative_to(LIBRARY)
        if relative.parts[0] == "cli":  # the composition root starts the shells
            continue
        shells = {
            name
            for name in _imported_modules(path)
            if name.split(".")[0] in SHELLS
            or (name.startswith("taskstream.") and name.split(".")[1] in SHELLS)
        }
        if shells:
            offenders[str(relative)] = sorted(shells)
    assert offenders == {}


def test_the_served_app_has_no_bench_route_or_public_path() -> None:
    app = create_app(Settings())
    paths = [route.path for route in app.routes]
    assert paths, "the app registers routes"
    assert [p for p in paths if p.startswith("/bench")] == []
    assert PUBLIC_PATHS.search("/bench/noop") is None


def _package_graph() -> dict[str, set[str]]:
    """Which area package imports which other one (lazy imports included)."""
    packages = {p.name for p in LIBRARY.iterdir() if (p / "__init__.py").is_file()}
    graph: dict[str, set[str]] = {name: set() for name in packages}
    for path in LIBRARY.rglob("*.py"):
        relative = path.relative_to(LIBRARY)
        if len(relative.parts) < 2 or relative.parts[0] not in packages:
            continue
        for name in _imported_modules(path):
            parts = name.split(".")
            other = parts[1] if parts[0] == "taskstream" and len(parts) > 1 else None
            if other in packages and other != relative.parts[0]:
                graph[relative.parts[0]].add(other)
    return graph


def test_area_packages_do_not_import_each_other_in_a_loop() -> None:
    graph = _package_graph()
    assert graph["tasks"], "the walk finds imports between packages"

    def loop_from(start: str, path: list[str]) -> list[str] | None:
        for nxt in sorted(graph[path[-1]]):
            if nxt == start:
                return [*path, nxt]
            if nxt not in path:
                found = loop_from(start, [*path, nxt])
                if found:
                    return found
        return None

    loops = [found for name in sorted(graph) if (found := loop_from(name, [name]))]
    assert loops == []
