"""How monitor/'s modules import each other and the vendor libraries, read from the source
with ``ast``: each vendor library behind one module, adapters never importing sideways, and
no import cycle.

Every import statement of a module counts as an edge, wherever it stands: at the top, in a
function (a lazy import still ties the modules together) or under ``if TYPE_CHECKING:`` (a
cycle hidden from the interpreter is still one for the reader and for mypy).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

# Each vendor library and the one module of monitor/ allowed to import it.
VENDOR_ADAPTERS: dict[str, str] = {
    "ib_async": "monitor.feeds.ib",
    "aiomqtt": "monitor.delivery.mqtt",
    "apprise": "monitor.delivery.chat",
    "prometheus_client": "monitor.metrics",
}


@dataclass(frozen=True, slots=True)
class Forbidden:
    """No module in (or equal to) ``importer`` imports one in (or equal to) ``imported``."""

    importer: str
    imported: str
    why: str


FORBIDDEN: tuple[Forbidden, ...] = (
    Forbidden("monitor.feeds", "monitor.delivery", "a feed reads the market; backoff is shared"),
    Forbidden("monitor.feeds", "monitor.sinks", "a feed knows nothing of where alerts go"),
    Forbidden("monitor.feeds", "monitor.portfolio", "a broker position is a domain value"),
    Forbidden("monitor.feeds", "monitor.rules", "a feed knows nothing of the rules"),
    Forbidden("monitor.sinks", "monitor.delivery", "delivery reads the journal's outbox"),
    Forbidden("monitor.sinks", "monitor.feeds", "a sink knows nothing of the feed"),
    Forbidden("monitor.sinks", "monitor.rules", "a saved alert state is a domain value"),
    Forbidden("monitor.delivery", "monitor.feeds", "delivery knows nothing of the feed"),
    Forbidden("monitor.live", "monitor.delivery", "delivery is built by app.py"),
    *(
        Forbidden("monitor.domain", f"monitor.{package}", "domain values depend on nothing")
        for package in (
            "delivery",
            "feeds",
            "market",
            "portfolio",
            "pricing",
            "rules",
            "signals",
            "sinks",
        )
    ),
)


@dataclass(frozen=True, slots=True)
class Imports:
    internal: dict[str, set[str]]  # module -> the modules of the package it imports
    external: dict[str, set[str]]  # module -> the top-level names of other packages


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` (a directory under ``root``) by its dotted name; a
    package by the name of its ``__init__``'s directory."""
    names: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _imported(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool
) -> list[tuple[str, str | None]]:
    """The names an import statement asks for, absolute: (module, name imported from it)."""
    if isinstance(node, ast.Import):
        return [(alias.name, None) for alias in node.names]
    base = node.module or ""
    if node.level:
        here = module.split(".") if is_package else module.split(".")[:-1]
        anchor = here[: len(here) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return [(base, alias.name) for alias in node.names]


def _resolve(name: str, attribute: str | None, modules: Mapping[str, Path]) -> str | None:
    """The module an import binds: ``from a import b`` is module ``a.b`` when there is one,
    else ``a``; ``import a.b.c`` the longest existing prefix. None outside the package."""
    if attribute is not None and f"{name}.{attribute}" in modules:
        return f"{name}.{attribute}"
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def read_imports(root: Path, package: str) -> Imports:
    modules = module_names(root, package)
    internal: dict[str, set[str]] = {}
    external: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        internal[module], external[module] = set(), set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name, attribute in _imported(node, module, path.name == "__init__.py"):
                top = name.split(".")[0]
                if top != package:
                    external[module].add(top)
                    continue
                target = _resolve(name, attribute, modules)
                if target is not None and target != module:
                    internal[module].add(target)
    return Imports(internal, external)


def import_cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted: every
    module in a group reaches every other through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(edges.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return sorted(groups)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_edges(edges: Mapping[str, set[str]]) -> list[str]:
    return sorted(
        f"{importer} -> {imported} ({rule.why})"
        for importer, targets in edges.items()
        for imported in targets
        for rule in FORBIDDEN
        if _within(importer, rule.importer) and _within(imported, rule.imported)
    )


IMPORTS = read_imports(REPO, "monitor")


@pytest.mark.parametrize("library", sorted(VENDOR_ADAPTERS))
def test_each_vendor_library_is_imported_by_one_module(library: str) -> None:
    importers = {m for m, names in IMPORTS.external.items() if library in names}
    assert importers == {VENDOR_ADAPTERS[library]}


def test_adapters_do_not_import_sideways() -> None:
    found = forbidden_edges(IMPORTS.internal)
    assert not found, "\n".join(found)


def test_every_forbidden_edge_names_existing_modules() -> None:
    """A rule about a package that was renamed away would pass for ever."""
    names = IMPORTS.internal.keys()
    for rule in FORBIDDEN:
        assert rule.importer in names, rule
        assert rule.imported in names, rule


def test_no_import_cycle_in_monitor() -> None:
    assert import_cycles(IMPORTS.internal) == []


def test_the_walker_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    """On a small package: the edges above are the ones Python (and mypy) would follow."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import leaf\n")
    (package / "sub" / "leaf.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.top import Thing\n"
    )
    (package / "top.py").write_text(
        "import json\n"
        "from .sub.leaf import x\n"
        "def later():\n"
        "    from pkg import sub\n"
        "    import pkg.sub.leaf as leaf\n"
    )
    imports = read_imports(tmp_path, "pkg")
    assert imports.internal == {
        "pkg": set(),
        "pkg.sub": {"pkg.sub.leaf"},
        "pkg.sub.leaf": {"pkg.top"},
        "pkg.top": {"pkg.sub.leaf", "pkg.sub"},
    }
    assert imports.external["pkg.sub.leaf"] == {"typing", "numpy"}
    assert import_cycles(imports.internal) == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]
