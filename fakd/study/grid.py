"""A sweep grid read from YAML: one notebook, fixed parameters, and the points to run.

    notebook: 03_distill_student     # a shipped notebook's name, or a path relative to this file
    description: free text           # optional
    parameters:                      # the same for every point
      profile: cpu
    grid:                            # name → list of values; the cross product is run
      method: [none, kd, fakd]
      seed: [0, 1, 2]
    report:                          # optional: parameters for the study's report on this sweep
      weights_chosen_at: "×4"        # (05_ablation_report), e.g. where its weights were chosen

``grid`` may also be a list of such mappings: the union of their cross products, without duplicates
(e.g. methods × seeds, plus FAKD alone × weights × tap sets). A parameter whose value is a list needs a
list of lists in the grid (``taps: [[body.3], [body.3, body.7]]``).
"""

import dataclasses
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fakd.errors import FakdError
from fakd.study.locations import resolve_notebook
from fakd.study.identity import identity_digest
from fakd.study.parameters import normalize_parameters

GRID_KEYS = {"notebook", "description", "parameters", "grid", "report"}
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")
_MAX_SLUG = 60


@dataclass(frozen=True)
class SweepPoint:
    """One run of the sweep: its folder name, the varied values, and all parameters (fixed + varied)."""

    key: str
    varied: dict
    parameters: dict


@dataclass(frozen=True)
class SweepGrid:
    """A parsed grid file."""

    source: Path | None
    notebook: Path
    description: str
    fixed: dict
    points: tuple[SweepPoint, ...]
    report: dict = field(default_factory=dict)  # parameters for the report notebook on this sweep

    def with_fixed(self, extra: dict) -> "SweepGrid":
        """The same grid with more fixed parameters (overriding the file's, e.g. from ``--set``)."""
        overlap = sorted(set(extra) & {name for point in self.points for name in point.varied})
        if overlap:
            raise FakdError(f"cannot fix {', '.join(overlap)}: the grid varies it")
        fixed = {**self.fixed, **normalize_parameters(extra)}
        return dataclasses.replace(self, fixed=fixed, points=_points(fixed, [point.varied for point in self.points]))


def _value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_value_text(item) for item in value) or "none"
    if isinstance(value, dict):
        return "+".join(f"{key}.{_value_text(item)}" for key, item in value.items())
    return _UNSAFE.sub("_", str(value)).strip("_") or "x"


def point_key(varied: dict, parameters: dict) -> str:
    """A readable, file-system-safe folder name that changes whenever what the point computes changes: the
    varied values, then a digest of its identity (``fakd.study.identity``: locations by content, no paths)."""
    slug = "_".join(f"{name}-{_value_text(value)}" for name, value in varied.items())[:_MAX_SLUG]
    digest = identity_digest(parameters)[:8]
    return f"{slug}-{digest}" if slug else digest


def _points(fixed: dict, varied_list: list[dict]) -> tuple[SweepPoint, ...]:
    points, seen = [], set()
    for varied in varied_list:
        parameters = {**fixed, **varied}
        identity = json.dumps(parameters, sort_keys=True, default=str)
        if identity in seen:
            continue
        seen.add(identity)
        points.append(SweepPoint(key=point_key(varied, parameters), varied=varied, parameters=parameters))
    return tuple(points)


def expand_grid(grid: dict | list, *, where: str = "grid") -> list[dict]:
    """The varied values of every point: the cross product of one mapping, or the union over a list."""
    blocks = grid if isinstance(grid, list) else [grid]
    if not blocks:
        raise FakdError(f"{where}: 'grid' is empty")
    varied_list = []
    for block in blocks:
        if not isinstance(block, dict) or not block:
            raise FakdError(f"{where}: each grid block must be a non-empty mapping name → list of values")
        for name, values in block.items():
            if not isinstance(values, list) or not values:
                raise FakdError(f"{where}: grid values of {name!r} must be a non-empty list (got {values!r}); "
                                "a list-valued parameter needs a list of lists")
        names = list(block)
        for combination in itertools.product(*(block[name] for name in names)):
            varied_list.append(normalize_parameters(dict(zip(names, combination))))
    return varied_list


def grid_from_mapping(spec: dict, *, source: Path | None = None) -> SweepGrid:
    """A SweepGrid from an already-read mapping (``source``: the YAML file, for messages and paths)."""
    where = str(source) if source is not None else "grid"
    if not isinstance(spec, dict):
        raise FakdError(f"{where}: expected a mapping with keys {sorted(GRID_KEYS)}")
    unknown = sorted(set(spec) - GRID_KEYS)
    if unknown:
        raise FakdError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(sorted(GRID_KEYS))}")
    if "notebook" not in spec or "grid" not in spec:
        raise FakdError(f"{where}: 'notebook' and 'grid' are required")
    fixed = spec.get("parameters") or {}
    if not isinstance(fixed, dict):
        raise FakdError(f"{where}: 'parameters' must be a mapping name → value")
    fixed = normalize_parameters(fixed)
    varied_list = expand_grid(spec["grid"], where=where)
    both = sorted({name for varied in varied_list for name in varied} & set(fixed))
    if both:
        raise FakdError(f"{where}: {', '.join(both)} both fixed under 'parameters' and varied under 'grid'")
    report = spec.get("report") or {}
    if not isinstance(report, dict):
        raise FakdError(f"{where}: 'report' must be a mapping name → value")
    notebook = resolve_notebook(spec["notebook"], relative_to=source.parent if source is not None else None)
    return SweepGrid(source=source, notebook=notebook, description=str(spec.get("description", "")),
                     fixed=fixed, points=_points(fixed, varied_list), report=report)


def load_grid(path: Path) -> SweepGrid:
    """Read and check a grid YAML file (``yaml.safe_load``)."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise FakdError(f"cannot read grid file {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise FakdError(f"grid file {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise FakdError(f"grid file {path} is not valid YAML: {_yaml_problem(error)}") from None
    return grid_from_mapping(spec, source=path)


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: what is wrong and where."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem

