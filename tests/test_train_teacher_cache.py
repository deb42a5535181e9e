"""The teacher-output cache: a run that reads the teacher's outputs from it computes exactly what a
run with live teacher forwards computes; wrong, damaged or unwritable caches never change a result
or stop a run; the CLI refuses a cache path that cannot be a folder."""

import json
import os
from pathlib import Path

import pytest
import torch

import fakd.train.teacher_cache as teacher_cache
from fakd.cli import main
from fakd.device import cpu_bf16_instructions
from fakd.train.config import load_run_config
from fakd.train.teacher_cache import TeacherOutputs, outputs_match
from fakd.train.trainer import train_run

ITERATIONS = 6
CHUNK = 2  # small chunks, so that a 6-iteration run writes three of them


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(teacher_cache, "CHUNK", CHUNK)


@pytest.fixture(scope="module")
def smoke_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "run"
    train_run(load_run_config("smoke", ["teacher.iterations=4"]), role="teacher", out=out, progress=False)
    return out / "checkpoints" / "best.pt"


def _distill(out: Path, teacher: Path, cache: Path | None, *overrides: str) -> tuple[list[dict], dict]:
    """A FAKD run's logged losses (without times) and its summary."""
    config = load_run_config("smoke", [f"student.iterations={ITERATIONS}", "log_every=1", "validate_every=3",
                                       "distill.methods=[fakd]", "teacher_cache=true", *overrides])
    summary = train_run(config, role="distill", out=out, teacher_checkpoint=teacher, progress=False,
                        teacher_cache=cache)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("elapsed_seconds")
    return records, summary


def test_a_run_reading_the_cache_computes_what_live_forwards_compute(tmp_path, smoke_teacher):
    live, live_summary = _distill(tmp_path / "live", smoke_teacher, None)
    first, first_summary = _distill(tmp_path / "first", smoke_teacher, tmp_path / "cache")
    second, second_summary = _distill(tmp_path / "second", smoke_teacher, tmp_path / "cache", "distill.weights={fakd: 7.0}")
    third, third_summary = _distill(tmp_path / "third", smoke_teacher, tmp_path / "cache")
    assert live_summary["teacher_cache"] is None
    assert first_summary["teacher_cache"]["stored"] == ITERATIONS and first_summary["teacher_cache"]["hits"] == 0
    assert third_summary["teacher_cache"]["hits"] == ITERATIONS and third_summary["teacher_cache"]["stored"] == 0
    assert second_summary["teacher_cache"]["hits"] == ITERATIONS  # another weight: the same teacher answers
    assert first == live and third == live  # bitwise: the stored tensors are the ones computed
    # the same student and teacher answers at iteration 1 (the logged term is unweighted), then its own path
    assert second[0]["fakd"] == live[0]["fakd"] and second[0]["loss"] != live[0]["loss"]
    folder = Path(first_summary["teacher_cache"]["folder"])
    assert sorted(p.name for p in folder.iterdir()) == ["chunk-000000.pt", "chunk-000001.pt", "chunk-000002.pt",
                                                          "key.json"]
    assert json.loads((folder / "key.json").read_text())["seed"] == 0


@pytest.mark.skipif(not cpu_bf16_instructions(), reason="this CPU has no bfloat16 instructions")
def test_bfloat16_runs_share_bfloat16_entries_and_never_float32_ones(tmp_path, smoke_teacher):
    live, _ = _distill(tmp_path / "live", smoke_teacher, None, "amp=true")
    _, first = _distill(tmp_path / "first", smoke_teacher, tmp_path / "cache", "amp=true")
    second, second_summary = _distill(tmp_path / "second", smoke_teacher, tmp_path / "cache", "amp=true")
    _, float32 = _distill(tmp_path / "float32", smoke_teacher, tmp_path / "cache")
    assert second == live and second_summary["teacher_cache"]["hits"] == ITERATIONS
    assert float32["teacher_cache"]["hits"] == 0 and float32["teacher_cache"]["folder"] != first["teacher_cache"]["folder"]
    folder = Path(first["teacher_cache"]["folder"])
    assert json.loads((folder / "key.json").read_text())["amp"] == "bfloat16"
    entry = torch.load(folder / "chunk-000000.pt", weights_only=True)["entries"][0]
    assert {value.dtype for value in entry["features"].values()} == {torch.bfloat16}  # as the forward gave them


def test_amp_without_bfloat16_shares_the_float32_entries(tmp_path, smoke_teacher, monkeypatch):
    live, _ = _distill(tmp_path / "live", smoke_teacher, None)
    _distill(tmp_path / "first", smoke_teacher, tmp_path / "cache")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {})
    records, summary = _distill(tmp_path / "amp", smoke_teacher, tmp_path / "cache", "amp=true")
    assert records == live and summary["teacher_cache"]["hits"] == ITERATIONS


def test_output_kd_stores_the_default_taps_that_fakd_reads(tmp_path, smoke_teacher):
    live_kd, _ = _distill(tmp_path / "live-kd", smoke_teacher, None, "distill.methods=[kd]")
    kd, kd_summary = _distill(tmp_path / "kd", smoke_teacher, tmp_path / "cache", "distill.methods=[kd]")
    live_fakd, _ = _distill(tmp_path / "live-fakd", smoke_teacher, None)
    fakd, fakd_summary = _distill(tmp_path / "fakd", smoke_teacher, tmp_path / "cache")
    assert kd == live_kd and fakd == live_fakd
    assert kd_summary["teacher_cache"]["stored"] == ITERATIONS and fakd_summary["teacher_cache"]["hits"] == ITERATIONS
    assert fakd_summary["teacher_cache"]["folder"] == kd_summary["teacher_cache"]["folder"]


def test_another_seed_or_tap_set_gets_its_own_entries(tmp_path, smoke_teacher):
    _distill(tmp_path / "s0", smoke_teacher, tmp_path / "cache")
    _, other_seed = _distill(tmp_path / "s1", smoke_teacher, tmp_path / "cache", "seed=1")
    _, other_taps = _distill(tmp_path / "taps", smoke_teacher, tmp_path / "cache",
                             "distill.student_taps=[body.1]", "distill.teacher_taps=[body.1]")
    assert other_seed["teacher_cache"]["hits"] == 0 and other_taps["teacher_cache"]["hits"] == 0
    assert len([p for p in (tmp_path / "cache").iterdir()]) == 3


def test_entries_that_disagree_with_the_teacher_are_rejected_and_change_nothing(tmp_path, smoke_teacher, capsys):
    live, _ = _distill(tmp_path / "live", smoke_teacher, None)
    _, first = _distill(tmp_path / "first", smoke_teacher, tmp_path / "cache")
    chunk = Path(first["teacher_cache"]["folder"]) / "chunk-000000.pt"
    payload = torch.load(chunk, weights_only=True)
    payload["entries"][0]["sr"] = payload["entries"][0]["sr"] * 1.01  # as if another teacher wrote it
    torch.save(payload, chunk)
    records, summary = _distill(tmp_path / "second", smoke_teacher, tmp_path / "cache")
    assert records == live
    assert summary["teacher_cache"]["rejected"].startswith("disagrees with this run's teacher at iteration 1")
    assert summary["teacher_cache"]["hits"] == 1  # the checked one only
    assert "not used by this run" in capsys.readouterr().err


def test_a_damaged_chunk_is_computed_instead(tmp_path, smoke_teacher):
    live, _ = _distill(tmp_path / "live", smoke_teacher, None)
    _, first = _distill(tmp_path / "first", smoke_teacher, tmp_path / "cache")
    chunk = Path(first["teacher_cache"]["folder"]) / "chunk-000001.pt"
    chunk.write_bytes(chunk.read_bytes()[:100])
    records, summary = _distill(tmp_path / "second", smoke_teacher, tmp_path / "cache")
    assert records == live
    assert summary["teacher_cache"]["hits"] == ITERATIONS - CHUNK and summary["teacher_cache"]["misses"] == CHUNK
    # a chunk that loads but holds something else (entries without the taps) counts as absent too
    other = Path(first["teacher_cache"]["folder"]) / "chunk-000002.pt"
    torch.save({"iterations": [4, 5], "entries": [{"sr": torch.zeros(1), "features": {}}] * 2}, other)
    records, summary = _distill(tmp_path / "third", smoke_teacher, tmp_path / "cache")
    assert records == live and summary["teacher_cache"]["hits"] == ITERATIONS - 2 * CHUNK


def test_a_cache_that_cannot_be_written_warns_and_the_run_goes_on(tmp_path, smoke_teacher):
    live, _ = _distill(tmp_path / "live", smoke_teacher, None)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="storing stopped"):
        records, summary = _distill(tmp_path / "run", smoke_teacher, blocked)
    assert records == live and summary["teacher_cache"]["stored"] == 0
    assert blocked.read_text() == "not a folder"


def test_a_student_alone_or_the_switch_off_uses_no_cache(tmp_path, smoke_teacher):
    _, summary = _distill(tmp_path / "off", smoke_teacher, tmp_path / "cache", "teacher_cache=false")
    assert summary["teacher_cache"] is None and not (tmp_path / "cache").exists()


def test_outputs_match_is_relative_and_checks_every_tap():
    features = {"a": torch.full((1, 2, 3, 3), 100.0)}
    live = TeacherOutputs(sr=torch.ones(1, 3, 4, 4), features=features)
    assert outputs_match(TeacherOutputs(sr=torch.ones(1, 3, 4, 4) * (1 + 1e-7), features=dict(features)), live)
    assert not outputs_match(TeacherOutputs(sr=torch.ones(1, 3, 4, 4), features={}), live)
    assert not outputs_match(TeacherOutputs(sr=torch.ones(1, 3, 4, 4),
                                            features={"a": torch.full((1, 2, 3, 3), 100.1)}), live)


def test_cli_refuses_a_cache_path_that_is_a_file(tmp_path, smoke_teacher, capsys):
    blocked = tmp_path / "cache"
    blocked.write_text("mine")
    code = main(["distill", "--teacher", str(smoke_teacher), "--config", "smoke", "--no-progress",
                 "--teacher-cache", str(blocked), "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--teacher-cache" in lines[0] and "not a folder" in lines[0]
    assert blocked.read_text() == "mine" and not (tmp_path / "out").exists()


def test_cli_distill_with_a_cache_records_it(tmp_path, smoke_teacher):
    args = ["distill", "--teacher", str(smoke_teacher), "--config", "smoke", "--no-progress", "--set",
            f"student.iterations={ITERATIONS}", "--teacher-cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["teacher_cache"]["hits"] == ITERATIONS
    assert "teacher_cache: true" in (tmp_path / "b" / "config.yaml").read_text()


def test_storing_stops_before_the_disk_runs_low(tmp_path, smoke_teacher, monkeypatch):
    monkeypatch.setattr(teacher_cache, "MIN_FREE_BYTES", 1 << 60)  # more than any disk has free
    live, _ = _distill(tmp_path / "live", smoke_teacher, None)
    with pytest.warns(RuntimeWarning, match="GiB free on its disk"):
        records, summary = _distill(tmp_path / "run", smoke_teacher, tmp_path / "cache")
    assert records == live and summary["teacher_cache"]["stored"] == 0
    assert not list((tmp_path / "cache").rglob("chunk-*"))


def test_a_study_notebooks_students_share_the_teacher_run_folders_cache(tmp_path):
    from fakd.train.runs import TEACHER_CACHE_FOLDER, run_config, train_student, train_teacher

    teacher_run = tmp_path / "teacher"
    train_teacher(teacher_run, load_run_config("smoke", ["teacher.iterations=2"]))
    summaries = []
    for method, weight in (("kd", None), ("fakd", None), ("fakd", 7.0)):
        config = run_config(profile="smoke", seed=0, method=method, weight=weight)
        config.student.iterations, config.teacher_cache = ITERATIONS, True
        summaries.append(train_student(tmp_path / f"{method}-{weight}", config, method=method, teacher_run_dir=teacher_run))
    caches = [summary["teacher_cache"] for summary in summaries]
    assert all(Path(cache["folder"]).parent == teacher_run / TEACHER_CACHE_FOLDER for cache in caches)
    # output KD taps nothing, yet stores the teacher's default taps: FAKD's runs read its entries
    assert caches[0]["folder"] == caches[1]["folder"] == caches[2]["folder"]
    assert caches[0]["stored"] == ITERATIONS and caches[1]["hits"] == caches[2]["hits"] == ITERATIONS


def test_fakd_study_says_where_the_cache_lies_how_big_it_is_and_what_it_freed(tmp_path, capsys):
    from fakd.commands.study import print_teacher_cache

    print_teacher_cache(tmp_path / "teacher", freed=0)
    assert capsys.readouterr().out == ""  # no cache (a profile without it): nothing said
    chunk = tmp_path / "teacher" / "teacher-outputs" / "0123" / "chunk-000000.pt"
    chunk.parent.mkdir(parents=True)
    chunk.write_bytes(b"")
    os.truncate(chunk, 300_000_000)  # sparse: its size without the disk
    print_teacher_cache(tmp_path / "teacher", freed=8_000_000_000)
    line = capsys.readouterr().out.strip()
    assert str(tmp_path / "teacher" / "teacher-outputs") in line and ": 0.3 GB used, 8.0 GB freed by this study" in line
    assert chunk.stat().st_size == 300_000_000  # said, not deleted


def _fake_entry(root: Path, name: str, *, seed: int, chunks: int, size: int = 1000) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "key.json").write_text(json.dumps({"seed": seed}))
    for index in range(chunks):
        (folder / f"chunk-{index:06d}.pt").write_bytes(b"x" * size)
    return folder


def test_pruning_a_seed_deletes_only_its_own_entries(tmp_path):
    root = tmp_path / "teacher-outputs"
    zero, one = _fake_entry(root, "aaaa", seed=0, chunks=3), _fake_entry(root, "bbbb", seed=1, chunks=2)
    mine = _fake_entry(root, "cccc", seed=0, chunks=1)
    (mine / "notes.txt").write_text("the user's")  # not fakd's: kept, and so is its folder
    (root / "foreign").mkdir()
    (root / "foreign" / "key.json").write_text("not json")
    assert teacher_cache.cache_usage(root) == 6000
    assert teacher_cache.prune_seeds(root, [0]) == 4000
    assert not zero.exists() and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in one.iterdir()) == ["chunk-000000.pt", "chunk-000001.pt", "key.json"]
    assert (root / "foreign" / "key.json").read_text() == "not json"
    assert teacher_cache.cache_usage(root) == 2000 and teacher_cache.prune_seeds(tmp_path / "absent", [0]) == 0


def test_storing_stops_at_the_cap_and_the_run_goes_on(tmp_path, smoke_teacher):
    _fake_entry(tmp_path / "cache", "other", seed=5, chunks=1, size=10_000)  # another key already fills it
    with pytest.warns(RuntimeWarning, match=r"storing stopped \(the cache holds 0.0 GB, its cap is 1e-05 GB"):
        live, summary = _distill(tmp_path / "capped", smoke_teacher, tmp_path / "cache", "teacher_cache_gb=0.00001")
    assert summary["final_iteration"] == ITERATIONS and summary["teacher_cache"]["stored"] == 0
    assert not list(Path(summary["teacher_cache"]["folder"]).glob("chunk-*.pt"))


def test_a_run_folder_from_before_the_speed_switches_still_resumes(tmp_path, smoke_teacher):
    """Runs written before channels_last/compile/teacher_cache existed have no such keys: resuming them,
    or resuming with a switch turned on, is the same run (the switches change speed, not results)."""
    out = tmp_path / "run"
    _distill(out, smoke_teacher, None, f"student.iterations={ITERATIONS - 2}", "teacher_cache=false")
    config_file = out / "config.yaml"
    kept = [line for line in config_file.read_text().splitlines()
            if not line.startswith(("channels_last:", "compile:", "teacher_cache:"))]
    config_file.write_text("\n".join(kept) + "\n")
    config = load_run_config("smoke", [f"student.iterations={ITERATIONS - 2}", "log_every=1", "validate_every=3",
                                       "distill.methods=[fakd]", "teacher_cache=true", "channels_last=true"])
    summary = train_run(config, role="distill", out=out, teacher_checkpoint=smoke_teacher, progress=False,
                        resume=True, teacher_cache=tmp_path / "cache")
    assert summary["status"] == "finished" and summary["final_iteration"] == ITERATIONS - 2
