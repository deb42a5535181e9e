"""Sweep grids: the cross product of a grid file's values, fixed parameters, errors."""

import json
from pathlib import Path

import pytest
from test_study_parameters import PARAMETERS_CELL, write_notebook

from fakd.errors import FakdError
from fakd.study.grid import grid_from_mapping, load_grid


@pytest.fixture
def notebook(tmp_path):
    return write_notebook(tmp_path / "nb.ipynb", PARAMETERS_CELL, "print(weight)")


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
    ({"notebook": "nb.ipynb", "grid": {"seed": [0]}, "report": ["x4"]}, "'report' must be a mapping"),
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


def test_a_grid_report_block_reaches_the_report_and_leaves_the_run_folders_alone(notebook):
    plain = grid_from_mapping({"notebook": str(notebook), "grid": {"seed": [0, 1]}})
    told = grid_from_mapping({"notebook": str(notebook), "grid": {"seed": [0, 1]}, "report": {"weights_chosen_at": "×4"}})
    assert [point.key for point in told.points] == [point.key for point in plain.points]
    assert told.report == told.with_fixed({"weight": 3.0}).report == {"weights_chosen_at": "×4"}


def test_every_shipped_grid_passes_only_parameters_the_report_declares():
    from fakd.study.pipeline import STUDY_GRIDS, StudyContext, _grid_report_parameters

    passed = {profile: _grid_report_parameters(StudyContext(profile=profile, runs_dir=Path("runs"),
                                                            report_dir=Path("report")), notebook="05_ablation_report")
              for profile in STUDY_GRIDS}
    assert passed["cpu-x2"] == {"weights_chosen_at": "×4"}  # x2 runs the weights x4 validation chose
    assert passed["cpu"] == {}


def test_a_report_parameter_the_report_does_not_declare_is_one_clear_error(tmp_path, monkeypatch):
    from fakd.study import pipeline

    (tmp_path / "cpu_ablation.yaml").write_text(
        "notebook: 03_distill_student\ngrid:\n  seed: [0]\nreport:\n  weights_chosen_on: x4\n")
    monkeypatch.setattr(pipeline, "grids_dir", lambda: tmp_path)
    context = pipeline.StudyContext(profile="cpu", runs_dir=tmp_path / "runs", report_dir=tmp_path / "report")
    with pytest.raises(FakdError, match="report parameter.s. weights_chosen_on are not parameters of 05_ablation_report"):
        pipeline._grid_report_parameters(context, notebook="05_ablation_report")
