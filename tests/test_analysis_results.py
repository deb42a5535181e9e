"""A notebook run's results.json: one object or rows, gathered over runs."""

import json

import pytest

from fakd.analysis.results import gather_results, read_results
from fakd.errors import FakdError


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
