"""The packages' layering (docs/architecture.md): each imports only packages below it,
type-only imports included, and no module imports itself back through a cycle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: lowest first: a package may import only the ones before it
LAYERS = ("core", "providers", "config", "pricing", "ledger", "metering", "alerts", "admin", "addon")
#: the generators of docs/*.md, which render what every package below the addon declares
DOC_GENERATORS = frozenset({"providers.docs", "config.reference"})


def _imports(path: Path, module: str) -> set[str]:
    """Every spendgate module `path` imports (at any depth, TYPE_CHECKING blocks included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level] if path.name != "__init__.py" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            # `from pkg import mod` imports pkg.mod when it is a module, else a member of pkg
            names = [f"{source}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in LAYERS}
    return found


def _modules() -> dict[str, set[str]]:
    graph = {}
    for package in LAYERS:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            graph[module] = _imports(path, module)
    return graph


def test_each_package_imports_only_the_packages_below_it():
    wrong = defaultdict(set)
    for module, imported in _modules().items():
        layer = LAYERS.index("admin" if module in DOC_GENERATORS else module.split(".")[0])
        for name in imported:
            if LAYERS.index(name.split(".")[0]) > layer:
                wrong[module].add(name)
    assert dict(wrong) == {}


def test_no_module_imports_itself_back():
    graph = _modules()

    def resolve(name: str) -> str | None:  # `from pkg import mod` names a module or a member
        while name and name not in graph:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {r for n in imported if (r := resolve(n)) and r != m} for m, imported in graph.items()}
    visiting, done, cycles = set(), set(), []

    def visit(module: str, path: list[str]) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append(path[path.index(module):] + [module])
            return
        visiting.add(module)
        for nxt in edges.get(module, ()):
            visit(nxt, path + [module])
        visiting.discard(module)
        done.add(module)

    for module in edges:
        visit(module, [])
    assert cycles == []
