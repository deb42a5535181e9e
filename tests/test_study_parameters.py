"""Study machinery without kernels: parameter declarations and checks, grid expansion, results reading,
the report's Markdown. (Notebook executions are in test_study_runs.py.)"""

import json

import nbformat
import pandas as pd
import pytest

from fakd.analysis.results import gather_results, read_results
from fakd.errors import FakdError
from fakd.study.grid import grid_from_mapping, load_grid
from fakd.study.parameters import check_parameters, notebook_digest, notebook_parameters, parameters_digest
from fakd.study.render import ReportEntry, report_markdown

PARAMETERS_CELL = """\
run_dir = ""  # where the results go
weight: float = 10.0
seed = 0
taps = ["body.3", "body.7"]
flag = True
label = None
options: dict = {}
shape = (1, 2)
scale: float | None = None  # annotated: None allowed, else a float
"""


def write_notebook(path, parameters_source, *cells):
    notebook = nbformat.v4.new_notebook()
    tagged = nbformat.v4.new_code_cell(parameters_source)
    tagged.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell("# test"), tagged]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def notebook(tmp_path):
    return write_notebook(tmp_path / "nb.ipynb", PARAMETERS_CELL, "print(weight)")


def test_declared_parameters_are_read_with_defaults_types_and_help(notebook):
    declared = notebook_parameters(notebook)
    assert list(declared) == ["run_dir", "weight", "seed", "taps", "flag", "label", "options", "shape", "scale"]
    assert declared["run_dir"].help == "where the results go"
    assert declared["weight"].expected_type is float and declared["weight"].default == 10.0
    assert declared["seed"].expected_type is int
    assert declared["taps"].default == ["body.3", "body.7"]
    assert declared["label"].expected_type is None and declared["label"].accepts_none
    assert declared["scale"].expected_type is float and declared["scale"].accepts_none


@pytest.mark.parametrize("given", [
    {"weight": 1, "seed": 3, "taps": ["body.1"], "flag": False, "label": "x", "options": {"a": 1}},
    {"weight": 2.5, "label": 7, "shape": [3, 4], "scale": None},
    {"scale": 2},
    {},
])
def test_well_typed_values_pass(notebook, given):
    check_parameters(notebook, given)


def test_unknown_name_is_an_error_listing_the_valid_names(notebook):
    with pytest.raises(FakdError, match=r"no parameter 'wieght'.*run_dir, weight, seed, taps, flag"):
        check_parameters(notebook, {"wieght": 1.0})


@pytest.mark.parametrize("given, expected", [
    ({"weight": "10"}, "expects float"),
    ({"weight": True}, "expects float"),
    ({"seed": 1.5}, "expects int"),
    ({"seed": False}, "expects int"),
    ({"taps": "body.3"}, "expects list"),
    ({"flag": 1}, "expects bool"),
    ({"options": [1]}, "expects dict"),
    ({"seed": None}, "may not be None"),
    ({"scale": "x2"}, "expects float"),
])
def test_wrongly_typed_value_is_an_error(notebook, given, expected):
    with pytest.raises(FakdError, match=expected):
        check_parameters(notebook, given)


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(notebook, tmp_path / "plain.ipynb")
    with pytest.raises(FakdError, match="no code cell tagged 'parameters'"):
        notebook_parameters(tmp_path / "plain.ipynb")
    with pytest.raises(FakdError, match="notebook not found"):
        notebook_parameters(tmp_path / "missing.ipynb")


def test_digests_ignore_key_order_and_prose(tmp_path, notebook):
    assert parameters_digest({"a": 1, "b": [1, 2]}) == parameters_digest({"b": [1, 2], "a": 1})
    assert parameters_digest({"a": 1}) != parameters_digest({"a": 2})
    before = notebook_digest(notebook)
    content = nbformat.read(notebook, as_version=4)
    content.cells[0].source = "# other prose"
    nbformat.write(content, notebook)
    assert notebook_digest(notebook) == before
    content.cells[2].source = "print(seed)"
    nbformat.write(content, notebook)
    assert notebook_digest(notebook) != before


def _code_notebook(path, *cells):
    content = nbformat.v4.new_notebook()
    content.cells = [nbformat.v4.new_markdown_cell("# prose")] + [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(content, path)
    return path


def test_notebook_digest_ignores_imports_comments_and_layout(tmp_path):
    first = _code_notebook(tmp_path / "a.ipynb", "from fakd.report.runs import train_student\nimport pandas as pd",
                           "%matplotlib inline", "x = train_student(run_dir, 1)\nif x:\n    from os import path\n"
                           "    y = pd.DataFrame(x)")
    second = _code_notebook(tmp_path / "b.ipynb", "from fakd.train.notebook import (\n    train_student)\n",
                            "%matplotlib inline", "# a comment\nimport pandas as pd\nx = train_student( run_dir,1 )"
                            "\nif x:  # why\n    y = pd.DataFrame(x)\n")
    assert notebook_digest(first) == notebook_digest(second)
    changed = _code_notebook(tmp_path / "c.ipynb", "from fakd.report.runs import train_student", "%matplotlib inline",
                             "x = train_student(run_dir, 2)\nif x:\n    y = pd.DataFrame(x)")
    assert notebook_digest(changed) != notebook_digest(first)
    magic = _code_notebook(tmp_path / "d.ipynb", "from fakd.report.runs import train_student", "%matplotlib notebook",
                           "x = train_student(run_dir, 1)\nif x:\n    y = pd.DataFrame(x)")
    assert notebook_digest(magic) != notebook_digest(first)  # an unparsable cell counts as written


def test_grid_is_the_cross_product_and_union_without_duplicates(notebook):
    grid = grid_from_mapping({
        "notebook": str(notebook),
        "parameters": {"flag": False},
        "grid": [
            {"seed": [0, 1, 2], "weight": [1.0, 10.0]},
            {"seed": [0], "weight": [10.0], "taps": [["body.3"], ["body.3", "body.7"]]},
            {"seed": [1], "weight": [1.0]},  # already in the first block
        ],
    })
    assert len(grid.points) == 3 * 2 + 2
    assert [point.varied for point in grid.points[:2]] == [{"seed": 0, "weight": 1.0}, {"seed": 0, "weight": 10.0}]
    assert all(point.parameters["flag"] is False for point in grid.points)
    keys = [point.key for point in grid.points]
    assert len(set(keys)) == len(keys)
    assert keys[0].startswith("seed-0_weight-1.0-")
    assert grid.points[-1].varied["taps"] == ["body.3", "body.7"]


def test_grid_with_fixed_overrides_changes_the_run_folders(notebook):
    grid = grid_from_mapping({"notebook": str(notebook), "grid": {"seed": [0, 1]}})
    fixed = grid.with_fixed({"weight": 3.0})
    assert all(point.parameters["weight"] == 3.0 for point in fixed.points)
    assert {point.key for point in fixed.points}.isdisjoint(point.key for point in grid.points)
    with pytest.raises(FakdError, match="the grid varies it"):
        grid.with_fixed({"seed": 5})


@pytest.mark.parametrize("spec, message", [
    ({"notebook": "nb.ipynb", "grid": {"seed": 0}}, "must be a non-empty list"),
    ({"notebook": "nb.ipynb", "grid": {"seed": []}}, "must be a non-empty list"),
    ({"notebook": "nb.ipynb", "grid": []}, "'grid' is empty"),
    ({"notebook": "nb.ipynb", "grid": {"seed": [0]}, "parameters": {"seed": 1}}, "both fixed"),
    ({"notebook": "nb.ipynb", "grid": {"seed": [0]}, "grids": {}}, "unknown key"),
    ({"grid": {"seed": [0]}}, "'notebook' and 'grid' are required"),
    ({"notebook": "nope.ipynb", "grid": {"seed": [0]}}, "notebook 'nope.ipynb' not found"),
])
def test_bad_grid_files_are_errors(tmp_path, notebook, spec, message):
    path = tmp_path / "grid.yaml"
    path.write_text(json.dumps(spec))  # JSON is YAML
    with pytest.raises(FakdError, match=message):
        load_grid(path)


def test_grid_notebook_path_is_relative_to_the_grid_file(tmp_path, notebook):
    (tmp_path / "grids").mkdir()
    path = tmp_path / "grids" / "g.yaml"
    path.write_text("notebook: ../nb.ipynb\ngrid:\n  seed: [0, 1]\n")
    assert load_grid(path).notebook.resolve() == notebook.resolve()


class _Point:
    def __init__(self, key, parameters):
        self.key, self.parameters = key, parameters


def test_results_contract_flat_object_or_rows(tmp_path):
    flat, rows, missing, broken, clash = (tmp_path / name for name in ("flat", "rows", "missing", "broken", "clash"))
    for folder in (flat, rows, missing, broken, clash):
        folder.mkdir()
    (flat / "results.json").write_text(json.dumps({"psnr": 30.5, "taps": ["a", "b"]}))
    (rows / "results.json").write_text(json.dumps({"rows": [{"dataset": "Set5", "psnr": 31.0},
                                                            {"dataset": "Set14", "psnr": 28.0}]}))
    (broken / "results.json").write_text("[1, 2]")
    (clash / "results.json").write_text(json.dumps({"seed": 9, "psnr": 1.0}))
    assert read_results(flat) == [{"psnr": 30.5, "taps": '["a", "b"]'}]
    with pytest.raises(FakdError, match="must hold one JSON object"):
        read_results(broken)
    table, problems = gather_results(
        [(_Point(name, {"seed": index}), tmp_path / name)
         for index, name in enumerate(["flat", "rows", "missing", "broken", "clash"])], base=tmp_path)
    assert list(table["run"]) == ["flat", "rows", "rows"]
    assert list(table["seed"]) == [0, 1, 1]
    assert list(table["psnr"]) == [30.5, 31.0, 28.0]
    assert table["run_dir"].tolist() == ["flat", "rows", "rows"]
    assert [(point.key, "wrote no" in message or "must hold" in message or "contradicts" in message)
            for point, message in problems] == [("missing", True), ("broken", True), ("clash", True)]


def test_report_markdown_has_headline_links_and_provenance(tmp_path):
    headline = pd.DataFrame({"model": ["student", "student + FAKD"], "Set5": ["31.00 / 0.8800", "31.20 / 0.8850"]})
    (tmp_path / "html").mkdir()
    text = report_markdown(
        tmp_path, title="Study", headline=headline, summary="FAKD beat the baseline by 0.2 dB.",
        entries=[ReportEntry("Teacher", page=tmp_path / "html" / "t.html", status="reused", note="3 s"),
                 ReportEntry("Sweep", status="1 failed")],
        provenance={"git commit": "abc123"},
    )
    assert "| model | Set5 |" in text and "| student + FAKD | 31.20 / 0.8850 |" in text
    assert "- [Teacher](html/t.html): reused — 3 s" in text
    assert "- Sweep: 1 failed" in text
    assert "FAKD beat the baseline by 0.2 dB." in text
    assert "- git commit: `abc123`" in text


def test_missing_notebook_tools_are_named_with_the_install_command(monkeypatch):
    from fakd.commands import common

    monkeypatch.setattr(common, "NOTEBOOK_TOOLS", ("papermill", "no_such_module_fakd"))
    with pytest.raises(FakdError, match=r"needs no_such_module_fakd: pip install 'fakd\[notebooks\]'"):
        common.require_notebook_tools()
