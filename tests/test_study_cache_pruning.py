"""A study deletes a seed's teacher outputs once every run of that seed has finished, and only then."""

import json

from fakd.study.grid import grid_from_mapping
from fakd.study.locations import resolve_notebook
from fakd.study.pipeline import StudyContext, _sweep_callback
from fakd.study.sweep import PointOutcome


def _entry(root, name, seed):
    (root / name).mkdir(parents=True)
    (root / name / "key.json").write_text(json.dumps({"seed": seed}))
    (root / name / "chunk-000000.pt").write_bytes(b"x" * 500)


def test_a_seeds_cache_goes_when_its_last_run_has_finished(tmp_path):
    cache = tmp_path / "runs" / "teacher" / "teacher-outputs"
    _entry(cache, "s0", 0)
    _entry(cache, "s1", 1)
    grid = grid_from_mapping({"notebook": str(resolve_notebook("03_distill_student")), "parameters": {"profile": "smoke"},
                              "grid": {"method": ["kd", "fakd"], "seed": [0, 1]}})
    context = StudyContext(profile="smoke", runs_dir=tmp_path / "runs", report_dir=tmp_path / "report")
    on_outcome = _sweep_callback(grid, context, archived=False, progress=False)
    by_seed = {seed: [p for p in grid.points if p.parameters["seed"] == seed] for seed in (0, 1)}

    def finish(point, status="done"):
        on_outcome(PointOutcome(point=point, run_dir=tmp_path / point.key, status=status, seconds=1.0), 1, 4)

    finish(by_seed[0][0])
    finish(by_seed[1][0], status="failed")  # a failed run is tried again later: its seed's cache stays
    assert (cache / "s0").is_dir() and (cache / "s1").is_dir()
    finish(by_seed[0][1], status="reused")
    assert not (cache / "s0").exists() and context.cache_freed == {0: 500}
    finish(by_seed[1][1])
    assert (cache / "s1" / "chunk-000000.pt").is_file()
