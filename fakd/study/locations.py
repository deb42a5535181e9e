"""Where the study's notebooks and grids are, installed or in a checkout.

One source of truth: the repository's top-level ``notebooks/`` (what users open in Jupyter). The
package reaches it through the symlink ``fakd/notebooks -> ../notebooks``, which setuptools follows when
it builds a wheel, so an installed ``fakd`` carries the notebooks as package data. Where a checkout has
no symlinks (git on Windows without them), the checkout's ``notebooks/`` beside the package is used.
"""

from pathlib import Path

import fakd
from fakd.errors import FakdError

NOTEBOOK_SUFFIX = ".ipynb"


def notebooks_dir() -> Path:
    """The folder holding the study notebooks (``00_kd_primer.ipynb`` ...) and ``grids/``."""
    package = Path(fakd.__file__).resolve().parent
    for candidate in (package / "notebooks", package.parent / "notebooks"):
        if candidate.is_dir():
            return candidate
    raise FakdError(f"the study notebooks are missing: neither {package / 'notebooks'} nor "
                    f"{package.parent / 'notebooks'} is a folder (broken install?)")


def grids_dir() -> Path:
    """The folder of the example sweep grids."""
    return notebooks_dir() / "grids"


def available_notebooks() -> list[str]:
    """Names (without suffix) of the notebooks that ship with fakd."""
    try:
        return sorted(path.stem for path in notebooks_dir().glob(f"*{NOTEBOOK_SUFFIX}"))
    except FakdError:
        return []


def resolve_notebook(name_or_path: str | Path, *, relative_to: Path | None = None) -> Path:
    """A notebook file: an existing path (relative to ``relative_to`` or the working directory), or the
    name of a shipped notebook, with or without ``.ipynb``."""
    text = str(name_or_path)
    candidates = [Path(text)]
    if relative_to is not None and not Path(text).is_absolute():
        candidates.insert(0, Path(relative_to) / text)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if "/" not in text and "\\" not in text:
        stem = text[: -len(NOTEBOOK_SUFFIX)] if text.endswith(NOTEBOOK_SUFFIX) else text
        shipped = [path for path in notebooks_dir().glob(f"*{NOTEBOOK_SUFFIX}") if path.stem == stem]
        if shipped:
            return shipped[0]
    known = ", ".join(available_notebooks()) or "(none shipped yet)"
    raise FakdError(f"notebook {text!r} not found (neither a file nor a shipped notebook; shipped: {known})")


def resolve_grid(name_or_path: str | Path) -> Path:
    """A grid YAML: an existing path, or the name of a shipped grid (``smoke``, ``paper_ablation``)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = grids_dir() / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if "/" not in str(name_or_path) and shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in grids_dir().glob("*.yaml"))) or "(none)"
    raise FakdError(f"grid file {str(name_or_path)!r} not found (shipped grids: {known})")
