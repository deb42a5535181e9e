"""Torch thread choice: --threads, then the config, then OMP_NUM_THREADS, then the cores free now; printed."""

import subprocess
import sys
import time

import pytest
import torch

from fakd.cli import main
from fakd.errors import FakdError
from fakd.study.environment import kernel_environment
from fakd.threads import busy_cores, choose_threads, use_threads


@pytest.fixture
def keep_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_user_then_the_config_then_the_environment_decide():
    assert choose_threads(3, configured=1, environ={"OMP_NUM_THREADS": "2"}).threads == 3
    assert choose_threads(None, configured=1, environ={"OMP_NUM_THREADS": "2"}).threads == 1
    assert choose_threads(None, environ={"OMP_NUM_THREADS": "2"}, cores=16, busy=0.0).threads == 2
    assert choose_threads(None, environ={"OMP_NUM_THREADS": "x"}, cores=16, busy=0.0).threads == 16


@pytest.mark.parametrize("cores, busy, workers, expected", [
    (2, 0.1, 1, 2),    # a quiet machine: every core
    (2, 2.3, 1, 1),    # another job keeps both cores busy: one thread, never zero
    (2, 1.0, 1, 1),    # one core free
    (2, 0.0, 2, 1),    # two workers share two cores
    (16, 4.0, 2, 6),   # 12 cores free, two workers: 6 each (not 8)
    (16, 0.0, 3, 5),   # 16 // 3
])
def test_free_cores_are_shared_between_workers(cores, busy, workers, expected):
    choice = choose_threads(None, workers=workers, environ={}, cores=cores, busy=busy)
    assert choice.threads == expected
    assert f"{cores} cores" in str(choice) and "--threads N overrides" in str(choice)


def test_without_a_measure_of_the_machine_the_cores_are_shared(monkeypatch):
    monkeypatch.setattr("fakd.threads.busy_cores", lambda: None)
    monkeypatch.setattr("fakd.threads.machine_load", lambda: None)
    assert choose_threads(None, workers=2, environ={}, cores=4).threads == 2


def test_a_run_right_after_another_gets_every_idle_core(monkeypatch):
    """Issue 24: the 1-minute load average still counts a run that just ended; the cores are idle now."""
    monkeypatch.setattr("fakd.threads.machine_load", lambda: 1.9)
    monkeypatch.setattr("fakd.threads.busy_cores", lambda: 0.04)
    choice = choose_threads(None, environ={}, cores=2)
    assert choice.threads == 2 and "0.0 of them busy with other work now" in str(choice)


def test_without_proc_stat_the_load_average_decides(monkeypatch, tmp_path):
    monkeypatch.setattr("fakd.threads.PROC_STAT", str(tmp_path / "missing"))
    monkeypatch.setattr("fakd.threads.machine_load", lambda: 1.2)
    assert busy_cores(interval=0.0) is None
    choice = choose_threads(None, environ={}, cores=2)
    assert choice.threads == 1 and "1-minute load 1.2" in str(choice)


def test_this_process_own_cpu_time_is_left_out(monkeypatch):
    ticks, own = iter([1000, 1000 + 50 * 2]), iter([3.0, 3.0 + 0.5])  # 1.0 s of CPU on the machine, 0.5 s ours
    monkeypatch.setattr("fakd.threads._busy_ticks", lambda cpus: next(ticks))
    monkeypatch.setattr("fakd.threads._own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr("os.sysconf", lambda name: 100)
    assert busy_cores(interval=0.5) == pytest.approx(1.0, abs=0.15)  # 0.5 s of others' CPU over ~0.5 s


def test_a_process_that_keeps_a_core_busy_is_seen():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 3\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)
        assert busy_cores(interval=0.5) >= 0.7
    finally:
        spinner.kill()
        spinner.wait()


def test_a_thread_count_below_one_is_a_user_error():
    with pytest.raises(FakdError, match="--threads"):
        choose_threads(0)


def test_use_threads_sets_torch_and_says_so(keep_torch_threads, capsys):
    assert use_threads(1, command="fakd test").threads == 1
    assert torch.get_num_threads() == 1
    assert capsys.readouterr().out.strip() == "fakd test: 1 torch thread (as --threads asked)"


def test_kernels_get_the_chosen_count(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert kernel_environment()["OMP_NUM_THREADS"] == "1"
    assert kernel_environment(threads=3)["MKL_NUM_THREADS"] == "3"


def test_the_cli_takes_threads_and_refuses_zero(keep_torch_threads, tmp_path, capsys):
    image = tmp_path / "in"
    image.mkdir()
    with pytest.raises(SystemExit) as exit_:
        main(["upscale", "--checkpoint", "x.pt", str(image), "--output", str(tmp_path / "out"), "--threads", "0"])
    assert exit_.value.code == 2
    assert "--threads" in capsys.readouterr().err
    code = main(["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "4", "--threads", "1"])
    assert code == 0
    assert "fakd evaluate: 1 torch thread (as --threads asked)" in capsys.readouterr().out
    assert torch.get_num_threads() == 1


def test_train_credits_the_flag_not_the_config(keep_torch_threads, tmp_path, capsys):
    args = ["train", "--role", "student", "--config", "smoke", "--set", "student.iterations=1", "--no-progress"]
    assert main([*args, "--threads", "1", "--out", str(tmp_path / "flag")]) == 0
    assert "fakd train: 1 torch thread (as --threads asked)" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "profile")]) == 0  # the smoke profile fixes threads: 1
    assert "fakd train: 1 torch thread (the run config's threads setting; --threads N overrides)" in capsys.readouterr().out
