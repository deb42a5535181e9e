"""The results a notebook leaves in its run directory, and their gathering into one table.

Contract: a notebook writes ``<run_dir>/results.json`` holding either one flat object of scalars
(one row: ``{"psnr": 31.2, "ssim": 0.88}``) or ``{"rows": [{...}, ...]}`` (several rows, e.g. one per
data set). Values should be numbers, strings, booleans or null; lists/objects are kept as JSON text.
"""

import json
from pathlib import Path

import pandas as pd

from fakd.errors import FakdError

RESULTS_FILE = "results.json"


def _cell(value):
    """A value as it goes into a table cell: scalars as they are, lists/mappings as JSON text."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=isinstance(value, dict))
    return value


def read_results(run_dir: Path) -> list[dict]:
    """The result rows of one run (FakdError when the file is missing or breaks the contract)."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FakdError(f"the notebook wrote no {RESULTS_FILE} into {run_dir}")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise FakdError(f"{path} is not valid JSON: {error}") from None
    rows = content.get("rows") if isinstance(content, dict) and set(content) == {"rows"} else content
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise FakdError(f"{path} must hold one JSON object or {{\"rows\": [objects]}}")
    return [{str(key): _cell(value) for key, value in row.items()} for row in rows]


def gather_results(runs: list[tuple], *, base: Path | None = None) -> tuple[pd.DataFrame, list[tuple]]:
    """One table over runs given as (point, run_dir) pairs (a point has ``key`` and ``parameters``).

    Every row carries ``run``, ``run_dir`` (relative to ``base`` when given), the point's parameters and
    the result keys. A run whose results are missing or contradict its parameters (same key, other
    value) is left out and returned in the problem list as (point, message).
    """
    rows, problems = [], []
    for point, run_dir in runs:
        try:
            result_rows = read_results(run_dir)
        except FakdError as error:
            problems.append((point, str(error)))
            continue
        parameters = {name: _cell(value) for name, value in point.parameters.items()}
        clash = sorted(name for row in result_rows for name in row
                       if name in parameters and row[name] != parameters[name])
        if clash:
            problems.append((point, f"results.json contradicts the run's parameters for {', '.join(set(clash))}"))
            continue
        location = Path(run_dir).relative_to(base) if base is not None else Path(run_dir)
        for row in result_rows:
            rows.append({"run": point.key, "run_dir": str(location), **parameters, **row})
    return pd.DataFrame(rows, columns=None if rows else ["run", "run_dir"]), problems
