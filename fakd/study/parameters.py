"""A notebook's declared parameters (its cell tagged ``parameters``) and the check of given values.

papermill only warns about a parameter the notebook does not declare and never checks types, so a typo
in a sweep grid would silently run the defaults. Here every given name must be declared and every value
must have the type of the declared default (or of its annotation) before a kernel starts.

The cell is read with Python's ``ast`` rather than papermill's line-based inspection, which misreads
some cells (e.g. it glues the line after ``x = None`` onto the default).
"""

import ast
import hashlib
import json
import typing
from dataclasses import dataclass
from pathlib import Path

import nbformat

from fakd.errors import FakdError

# Annotation / default types the check understands; anything else is accepted as is.
_KNOWN_TYPES = {"bool": bool, "int": int, "float": float, "str": str, "list": list, "dict": dict, "tuple": tuple}
_NO_DEFAULT = object()


@dataclass(frozen=True)
class NotebookParameter:
    """One assignment of the parameters cell: ``name[: annotation] = default  # help``."""

    name: str
    default_source: str
    annotation: str | None
    help: str
    default: typing.Any = _NO_DEFAULT  # the literal value, or _NO_DEFAULT when not a literal

    @property
    def expected_type(self) -> type | None:
        """The type a given value must have, or None when the cell does not say."""
        if self.annotation is not None:
            base = self.annotation.replace("Optional[", "").replace("]", "").split("|")[0].strip()
            return _KNOWN_TYPES.get(base)
        if self.default is _NO_DEFAULT or self.default is None:
            return None
        return type(self.default) if type(self.default) in _KNOWN_TYPES.values() else None

    @property
    def accepts_none(self) -> bool:
        if self.annotation is not None:
            return "None" in self.annotation or "Optional" in self.annotation
        return self.default is None or self.default is _NO_DEFAULT

    def describe(self) -> str:
        kind = self.annotation or (self.expected_type.__name__ if self.expected_type else "any")
        return f"{self.name}: {kind} = {self.default_source}"


def parameters_cell_index(notebook: nbformat.NotebookNode) -> int | None:
    """Index of the first code cell tagged ``parameters``, or None."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` as nbformat v4; FakdError when it is missing or not a notebook."""
    path = Path(path)
    if not path.is_file():
        raise FakdError(f"notebook not found: {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # nbformat raises several unrelated types for a broken file
        raise FakdError(f"{path} is not a readable notebook: {error}") from None


def notebook_parameters(path: Path) -> dict[str, NotebookParameter]:
    """The parameters the notebook at ``path`` declares, in cell order."""
    notebook = read_notebook(path)
    index = parameters_cell_index(notebook)
    if index is None:
        raise FakdError(f"{path} has no code cell tagged 'parameters' (papermill needs one)")
    source = notebook.cells[index].source
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise FakdError(f"the parameters cell of {path} is not plain Python: {error}") from None
    lines = source.splitlines()
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, ast.unparse(node.annotation)
        else:
            continue
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            default = _NO_DEFAULT
        last_line = lines[node.end_lineno - 1]
        comment = last_line.split("#", 1)[1].strip() if "#" in last_line[node.end_col_offset:] else ""
        declared[name] = NotebookParameter(name=name, default_source=ast.unparse(node.value),
                                           annotation=annotation, help=comment, default=default)
    return declared


def _matches(value: typing.Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, expected)


def normalize_parameters(parameters: dict) -> dict:
    """Values as papermill and JSON carry them: paths become strings, tuples lists."""

    def plain(value):
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(item) for item in value]
        if isinstance(value, dict):
            return {str(key): plain(item) for key, item in value.items()}
        return value

    return {str(name): plain(value) for name, value in parameters.items()}


def check_parameters(path: Path, parameters: dict) -> dict[str, NotebookParameter]:
    """Raise FakdError for a name the notebook does not declare or a value of the wrong type.

    Returns the declared parameters so callers can report them.
    """
    declared = notebook_parameters(path)
    valid = ", ".join(declared) or "(none)"
    for name, value in parameters.items():
        if name not in declared:
            raise FakdError(f"notebook {Path(path).name} has no parameter {name!r}; its parameters are: {valid}")
        parameter = declared[name]
        if value is None:
            if not parameter.accepts_none:
                raise FakdError(f"parameter {name!r} of {Path(path).name} may not be None ({parameter.describe()})")
            continue
        expected = parameter.expected_type
        if expected is not None and not _matches(value, expected):
            raise FakdError(
                f"parameter {name!r} of {Path(path).name} expects {expected.__name__} "
                f"({parameter.describe()}), got {type(value).__name__} {value!r}"
            )
    return declared


def parameters_digest(parameters: dict) -> str:
    """A stable SHA-256 of the parameter values (key order does not matter)."""
    text = json.dumps(normalize_parameters(parameters), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def notebook_digest(path: Path) -> str:
    """SHA-256 of what the notebook's code does, so that a finished run is reused while it still holds.

    Only code cells count (editing prose or outputs changes nothing), and each is reduced to its
    statements: it is parsed with ``ast``, its ``import`` / ``from ... import`` statements are dropped
    and the rest is written back with ``ast.unparse``, so where names are imported from, comments and
    formatting do not count — moving a module inside fakd does not force re-training. A cell that is
    not plain Python (an IPython magic such as ``%matplotlib``) counts with its raw source.
    """
    notebook = read_notebook(path)
    code = "\n\x00\n".join(code_cell_statements(cell.source) for cell in notebook.cells
                            if cell.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def library_digest() -> str:
    """SHA-256 of the installed fakd library's code (every ``.py`` file and profile, with its path).

    A report notebook's finished run is reused only while this is unchanged, so a rendered report never
    shows code (imports, calls) that today's library no longer has; training runs are not tied to it.
    """
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*package.rglob("*.py"), *package.glob("presets/*.yaml")]):
        digest.update(str(path.relative_to(package)).encode() + b"\x00" + path.read_bytes() + b"\x00")
    return digest.hexdigest()


def code_cell_statements(source: str) -> str:
    """A code cell's statements without imports, unparsed (comments, layout gone); raw when unparsable."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    return ast.unparse(_DropImports().visit(tree))


class _DropImports(ast.NodeTransformer):
    """Removes every ``import`` / ``from ... import`` statement, at any depth."""

    def visit_Import(self, node: ast.Import) -> None:
        return None

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        return None
