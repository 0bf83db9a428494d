"""The house rules, checked on the source tree: lower layers never import the orchestrator, the
shared ground imports nothing of the project, no import cycle, and no source file a newcomer cannot
read in one sitting."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "harness", "suites", "retrievers", "judges", "reports")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _imports(path: Path, name: str, modules: dict) -> set[str]:
    """Every project module that importing `name` (at `path`) runs, at module level or inside a
    function: each module it names, and the packages above it whose `__init__` Python runs first
    (except `name`'s own packages, which are already being imported)."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named |= {f"{node.module}.{a.name}" for a in node.names}
    found = set()
    for target in named:
        parts = target.split(".")
        for n in range(1, len(parts) + 1):
            prefix = ".".join(parts[:n])
            if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                found.add(prefix)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def test_lower_layers_never_import_the_harness():
    offenders = [
        f"{m} imports {dep}"
        for m, deps in _graph().items()
        if m.split(".")[0] in ("suites", "retrievers", "judges", "reports", "core")
        for dep in deps
        if dep.split(".")[0] == "harness"
    ]
    assert offenders == []


def test_shared_ground_imports_nothing_of_the_project():
    offenders = [
        f"{m} imports {d}"
        for m, deps in _graph().items()
        if m.startswith("core")
        for d in deps
        if not d.startswith("core")
    ]
    assert offenders == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph` (Tarjan's strongly connected components of more than one module)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_source_file_is_over_400_lines():
    files = [
        p
        for pkg in (*PACKAGES, "tests", "bench")
        for p in (ROOT / pkg).rglob("*")
        if p.suffix in (".py", ".j2")
    ]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
