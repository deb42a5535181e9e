"""Training loop: determinism, kill -9 and resume, a kill during a checkpoint write, the NaN stop.

Every run uses the smoke profile (tiny models, embedded photographs, one torch thread), so the
child processes take seconds.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from fakd.device import cpu_bf16_instructions
from fakd.errors import FakdError
from fakd.train.config import load_run_config
from fakd.train.trainer import train_run
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint

REPO = Path(__file__).resolve().parents[1]

# A child that runs the CLI with a hook: it blocks (prints BLOCKED, sleeps) when it asks for the
# batch of iteration $BLOCK_AT, or in the middle of writing checkpoint number $BLOCK_IN_SAVE (after
# half the bytes are on disk), so the parent can SIGKILL it at a known point.
CHILD = textwrap.dedent("""
    import io, os, sys, time
    import torch
    from fakd.data.training import TrainingPatches
    import fakd.zoo.checkpoint as checkpoint

    block_at = int(os.environ.get("BLOCK_AT", "-1"))
    block_in_save = int(os.environ.get("BLOCK_IN_SAVE", "-1"))
    original_batch = TrainingPatches.batch

    def batch(self, iteration, batch_size):
        if iteration == block_at:
            print("BLOCKED", flush=True)
            time.sleep(600)
        return original_batch(self, iteration, batch_size)

    TrainingPatches.batch = batch
    saves = {"count": 0}
    original_save = torch.save

    def save(payload, stream, *args, **kwargs):
        saves["count"] += 1
        if saves["count"] == block_in_save:
            buffer = io.BytesIO()
            original_save(payload, buffer)
            data = buffer.getvalue()
            stream.write(data[: len(data) // 2])
            stream.flush()
            os.fsync(stream.fileno())
            print("BLOCKED", flush=True)
            time.sleep(600)
        return original_save(payload, stream, *args, **kwargs)

    checkpoint.torch.save = save
    from fakd.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _run_until_blocked(tmp_path, args, **env_extra):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, **{key: str(value) for key, value in env_extra.items()}}
    child = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = child.stdout.readline()
        while line and line.strip() != "BLOCKED":  # other output first (e.g. the thread count chosen)
            line = child.stdout.readline()
        assert line.strip() == "BLOCKED", f"child ended early: {line!r} {child.stderr.read()[-2000:]}"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL


def _states_equal(first: dict, second: dict) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[key], second[key]) for key in first)


def _metrics_without_time(path: Path) -> list[dict]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("elapsed_seconds", None)
    return records


TRAIN_ARGS = ["train", "--role", "student", "--config", "smoke", "--set", "student.iterations=10",
              "--no-progress"]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted smoke student run (10 iterations, checkpoints every 2)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    config = load_run_config("smoke", ["student.iterations=10"])
    summary = train_run(config, role="student", out=out, progress=False)
    assert summary["status"] == "finished" and summary["final_iteration"] == 10
    return out


def test_run_directory_contents(reference_run):
    summary = json.loads((reference_run / "summary.json").read_text())
    for key in ("git_commit", "torch_version", "device", "wall_time_seconds", "best_val_psnr"):
        assert key in summary
    assert summary["best_val_psnr"] == max(r["val_psnr"] for r in _metrics_without_time(
        reference_run / "metrics.jsonl") if "val_psnr" in r)
    assert (reference_run / "config.yaml").is_file() and (reference_run / "job.json").is_file()
    best = load_checkpoint(reference_run / "checkpoints" / "best.pt")
    assert best["iteration"] == summary["best_iteration"] and "optimizer_state" not in best
    last = load_checkpoint(reference_run / "checkpoints" / "last.pt")
    assert last["iteration"] == 10 and "optimizer_state" in last


def test_same_seed_same_weights(reference_run, tmp_path):
    config = load_run_config("smoke", ["student.iterations=10"])
    train_run(config, role="student", out=tmp_path / "again", progress=False)
    again = load_checkpoint(tmp_path / "again" / "checkpoints" / "last.pt")["model_state"]
    reference = load_checkpoint(reference_run / "checkpoints" / "last.pt")["model_state"]
    assert _states_equal(again, reference)


def test_kill_9_mid_run_then_resume_gives_the_same_weights(reference_run, tmp_path):
    from fakd.cli import main

    out = tmp_path / "killed"
    # Checkpoints after iterations 2, 4, 6; the child is killed while asking for batch 7, so
    # iteration 7 is logged but not checkpointed and must be redone.
    _run_until_blocked(tmp_path, [*TRAIN_ARGS, "--out", str(out)], BLOCK_AT=7)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["iteration"] == 6
    assert _metrics_without_time(out / "metrics.jsonl")[-1]["iteration"] == 7
    assert main([*TRAIN_ARGS, "--out", str(out), "--resume"]) == 0
    resumed = load_checkpoint(out / "checkpoints" / "last.pt")
    reference = load_checkpoint(reference_run / "checkpoints" / "last.pt")
    assert resumed["iteration"] == 10
    assert _states_equal(resumed["model_state"], reference["model_state"])  # bitwise
    assert _metrics_without_time(out / "metrics.jsonl") == _metrics_without_time(reference_run / "metrics.jsonl")
    assert _states_equal(load_checkpoint(out / "checkpoints" / "best.pt")["model_state"],
                         load_checkpoint(reference_run / "checkpoints" / "best.pt")["model_state"])


def test_kill_during_checkpoint_write_keeps_the_previous_one(reference_run, tmp_path):
    from fakd.cli import main

    out = tmp_path / "torn"
    # Saves: last@2 (1), best@4 (2), last@4 (3), last@6 (4): die half-way through writing last@6.
    _run_until_blocked(tmp_path, [*TRAIN_ARGS, "--out", str(out)], BLOCK_IN_SAVE=4)
    assert list((out / "checkpoints").glob(".last.pt.*.tmp")), "the torn write was in a temporary file"
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last["iteration"] == 4
    load_model_from_checkpoint(out / "checkpoints" / "last.pt")
    assert main([*TRAIN_ARGS, "--out", str(out), "--resume"]) == 0
    assert not list((out / "checkpoints").glob("*.tmp")), "resume clears the torn temporary file"
    resumed = load_checkpoint(out / "checkpoints" / "last.pt")
    reference = load_checkpoint(reference_run / "checkpoints" / "last.pt")
    assert _states_equal(resumed["model_state"], reference["model_state"])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import fakd.train.trainer as trainer

    real_open = trainer.open_training_patches

    def poisoned(config, **kwargs):
        patches = real_open(config, **kwargs)
        real_batch = patches.batch

        def batch(iteration, batch_size):
            lr, hr = real_batch(iteration, batch_size)
            return (lr * float("nan"), hr) if iteration == 5 else (lr, hr)

        patches.batch = batch
        return patches

    monkeypatch.setattr(trainer, "open_training_patches", poisoned)
    out = tmp_path / "nan"
    config = load_run_config("smoke", ["student.iterations=10"])
    with pytest.raises(FakdError, match=r"loss became nan at iteration 6.*last good checkpoint .*last\.pt kept"):
        train_run(config, role="student", out=out, progress=False)
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last["iteration"] == 4
    assert all(torch.isfinite(value).all() for value in last["model_state"].values())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"].startswith("stopped") and summary["failed_iteration"] == 6


def test_out_dir_rules(reference_run, tmp_path):
    config = load_run_config("smoke", ["student.iterations=10"])
    with pytest.raises(FakdError, match="already holds a run"):
        train_run(config, role="student", out=reference_run, progress=False)
    different = load_run_config("smoke", ["student.iterations=10", "seed=5"])
    with pytest.raises(FakdError, match="holds a different run.*seed"):
        train_run(different, role="student", out=reference_run, resume=True, progress=False)
    with pytest.raises(FakdError, match="holds a different run.*role"):
        train_run(config, role="teacher", out=reference_run, resume=True, progress=False)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(FakdError, match="not empty"):
        train_run(config, role="student", out=stranger, progress=False)
    short = load_run_config("smoke", ["student.iterations=2"])
    summary = train_run(short, role="student", out=stranger, overwrite=True, progress=False)
    assert summary["final_iteration"] == 2 and (stranger / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("schedule", ["multistep", "cosine"])
def test_schedules(schedule):
    from fakd.train.setup import make_scheduler

    config = load_run_config("smoke", [f"student.schedule={schedule}", "student.lr=1e-3",
                                       "student.milestones=[0.5,0.75]", "student.min_lr=1e-5"])
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=config.student.lr)
    scheduler = make_scheduler(optimizer, config.student, 8)
    rates = []
    for _ in range(8):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    if schedule == "multistep":  # halved after 4 and again after 6 of 8 iterations
        assert rates == pytest.approx([1e-3] * 4 + [5e-4] * 2 + [2.5e-4] * 2)
    else:
        assert rates[0] == pytest.approx(1e-3) and optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
        assert all(a > b for a, b in zip(rates, rates[1:]))


# Speed switches (config channels_last / compile) compute what the eager path computes: the same seed
# gives the same loss curve. Tolerance: 1e-4 relative on every logged loss and term over 4 iterations
# of FAKD distillation (measured differences are ~1e-6: only the order of float sums changes).
SWITCH_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def smoke_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher") / "run"
    train_run(load_run_config("smoke", ["teacher.iterations=4"]), role="teacher", out=out, progress=False)
    return out / "checkpoints" / "best.pt"


def _fakd_losses(tmp_path, teacher, *switches) -> list[dict]:
    config = load_run_config("smoke", ["student.iterations=4", "log_every=1", "distill.methods=[fakd]", *switches])
    out = tmp_path / ("run-" + "-".join(switches or ("eager",)))
    train_run(config, role="distill", out=out, teacher_checkpoint=teacher, progress=False)
    return [{key: value for key, value in record.items() if key == "loss" or key.startswith(("l1_", "fakd"))}
            for record in _metrics_without_time(out / "metrics.jsonl") if "loss" in record]


def _assert_same_curve(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second) == 4 and first[0].keys() == second[0].keys() and "fakd" in first[0]
    for one, other in zip(first, second):
        for key in one:
            assert other[key] == pytest.approx(one[key], rel=SWITCH_TOLERANCE), key


def test_channels_last_gives_the_eager_loss_curve(tmp_path, smoke_teacher):
    _assert_same_curve(_fakd_losses(tmp_path, smoke_teacher), _fakd_losses(tmp_path, smoke_teacher, "channels_last=true"))


@pytest.mark.slow  # inductor compiles the model (tens of seconds on CPU)
def test_compile_on_cpu_gives_the_eager_loss_curve(tmp_path, smoke_teacher):
    _assert_same_curve(_fakd_losses(tmp_path, smoke_teacher),
                       _fakd_losses(tmp_path, smoke_teacher, "compile=true", "channels_last=true"))


# --amp on a CPU: bfloat16 autocast changes every logged value by rounding, not the run's course. Tolerance on
# the 4 logged losses and terms of the smoke FAKD run: measured deviations up to ~0.3% (2026-12-08).
AMP_TOLERANCE = 2e-2


def test_amp_on_a_cpu_without_bfloat16_trains_float32_exactly(tmp_path, smoke_teacher, monkeypatch, capsys):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {})
    eager = _fakd_losses(tmp_path, smoke_teacher)
    capsys.readouterr()
    assert _fakd_losses(tmp_path, smoke_teacher, "amp=true") == eager
    assert "amp: this CPU has no bfloat16 instructions" in capsys.readouterr().out


@pytest.mark.skipif(not cpu_bf16_instructions(), reason="this CPU has no bfloat16 instructions")
def test_amp_on_a_bfloat16_cpu_follows_the_float32_loss_curve(tmp_path, smoke_teacher, capsys):
    eager = _fakd_losses(tmp_path, smoke_teacher, "channels_last=true")
    capsys.readouterr()
    amp = _fakd_losses(tmp_path, smoke_teacher, "channels_last=true", "amp=true")
    assert "amp: bfloat16 autocast on cpu" in capsys.readouterr().out
    assert amp != eager  # bfloat16 did run
    assert len(amp) == len(eager) == 4
    for one, other in zip(eager, amp):
        for key in one:
            assert other[key] == pytest.approx(one[key], rel=AMP_TOLERANCE), key


@pytest.mark.parametrize("keep_last", [False, True], ids=["archived-without-last-pt", "with-last-pt"])
def test_resuming_a_finished_run_leaves_it_as_it_is(reference_run, tmp_path, monkeypatch, keep_last):
    """Resuming a finished run (a training notebook re-executed: a study archive keeps best.pt but not
    last.pt; on the machine that trained it both are there) returns its summary and leaves its files as
    they are — the summary still names the commit that trained it, not the one that resumed it."""
    import shutil

    run = tmp_path / "finished"
    shutil.copytree(reference_run, run)
    if not keep_last:
        (run / "checkpoints" / "last.pt").unlink()
    files = [run / "metrics.jsonl", run / "summary.json", run / "checkpoints" / "best.pt"]
    files += [run / "checkpoints" / "last.pt"] if keep_last else []
    before = {path: path.read_bytes() for path in files}
    monkeypatch.setattr("fakd.train.records.git_commit", lambda: "a-later-commit")
    config = load_run_config("smoke", ["student.iterations=10"])
    summary = train_run(config, role="student", out=run, resume=True, progress=False)
    assert summary == json.loads(before[run / "summary.json"]) and summary["git_commit"] != "a-later-commit"
    assert {path: path.read_bytes() for path in files} == before
    assert (run / "checkpoints" / "last.pt").exists() == keep_last
    longer = load_run_config("smoke", ["student.iterations=12"])  # another run: refused, files untouched
    with pytest.raises(FakdError, match="holds a different run"):
        train_run(longer, role="student", out=run, resume=True, progress=False)
    assert {path: path.read_bytes() for path in files} == before
