"""The CLI package's shape: every module imports on its own, no module imports another that
(directly or not) imports it back, and `import technic_v4.cli` loads no engine module."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import technic_v4.cli

PACKAGE = Path(technic_v4.cli.__file__).parent
MODULES = sorted(m.name for m in pkgutil.iter_modules([str(PACKAGE)]) if m.name != "__main__")


def cli_imports(module: str) -> set[str]:
    """The technic_v4.cli modules `module` imports anywhere in its source (function bodies
    included: an import inside a function still ties the two modules together)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "technic_v4.cli":
                found |= {a.name for a in node.names if a.name in MODULES}
            elif node.module.startswith("technic_v4.cli."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[2] for a in node.names
                      if a.name.startswith("technic_v4.cli.")}
    return found - {module}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` (module -> modules it imports), or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    return next((c for c in (visit(n, []) for n in sorted(graph)) if c), None)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_cli_module_imports_one_that_imports_it_back() -> None:
    graph = {m: cli_imports(m) for m in MODULES}
    assert {"main", "options", "scan", "data", "models"} <= set(MODULES)
    assert cycle(graph) is None, graph
    assert "main" not in set().union(*(graph[m] for m in MODULES if m != "__init__"))


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_alone(module: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import technic_v4.cli.{module}"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_importing_the_cli_loads_typer_and_rich_only() -> None:
    code = ("import sys\nimport technic_v4.cli\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', "
            "'numba', 'xgboost', 'pyarrow', 'pydantic') or (m.startswith('technic_v4.') and "
            "not m.startswith('technic_v4.cli'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
