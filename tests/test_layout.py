"""The package's shape: imports run one way (docs/architecture.md) and functions stay short.

Every ``import`` of a fakd module anywhere in ``fakd/**/*.py`` counts — inside functions too, so a
lazy import cannot hide a cycle. Modules form no cycle, and each package imports only from its own
layer's base modules and the layers below it (``LAYERS``, the picture in docs/architecture.md).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fakd"
# Bottom to top; a unit may import units of earlier layers (and itself), never of its own layer or later ones.
LAYERS = (
    ("fakd", "fakd.errors"),
    ("fakd.atomic", "fakd.checks", "fakd.device", "fakd.malloc", "fakd.paths", "fakd.threads"),
    ("fakd.data", "fakd.distill", "fakd.metrics", "fakd.models"),
    ("fakd.zoo",),
    ("fakd.train",),
    ("fakd.analysis",),
    ("fakd.study",),
    ("fakd.commands",),
    ("fakd.cli",),
    ("fakd.__main__",),
    ("fakd.docs_site",),
)
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_files() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The fakd modules ``path`` imports anywhere in its body (``from fakd.x import y``: fakd.x.y
    when that is a module, else fakd.x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "fakd"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "fakd":
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_unit(module: str) -> str:
    """The unit of ``LAYERS`` a module belongs to: its package (fakd.train) or a base module (fakd.paths)."""
    units = [unit for layer in LAYERS for unit in layer]
    matches = [unit for unit in units if module == unit or module.startswith(unit + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and docs/architecture.md")
    return max(matches, key=len)


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_modules_import_without_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_packages_import_only_from_lower_layers():
    level = {unit: index for index, layer in enumerate(LAYERS) for unit in layer}
    wrong = []
    for module, targets in import_graph().items():
        unit = layer_unit(module)
        for target in targets:
            other = layer_unit(target)
            if other != unit and level[other] >= level[unit]:
                wrong.append(f"{module} imports {target} ({other} is not below {unit})")
    assert not wrong, "\n".join(sorted(wrong))


def test_package_graph_has_no_cycle():
    units: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        units.setdefault(layer_unit(module), set()).update(layer_unit(target) for target in targets)
    graph = {unit: targets - {unit} for unit, targets in units.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "package cycle: " + " → ".join(cycle)


def long_functions(limit: int = MAX_FUNCTION_LINES) -> list[str]:
    found = []
    for name, path in module_files().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{name}.{node.name} (line {node.lineno}): {lines} lines")
    return found


def test_no_function_is_longer_than_the_limit():
    found = long_functions()
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines (split them by role):\n" + "\n".join(found)


@pytest.mark.parametrize("limit", [5])
def test_function_length_check_can_fail(limit):
    assert long_functions(limit)  # the package has functions over 5 lines: the check sees them
