"""Guarantee: every user mistake (and every failure of the machine's storage) is one line on stderr
and exit code 2, found before any work starts, never a traceback.

Most cases call ``fakd.cli.main`` in-process (an uncaught exception fails the test, so a traceback
cannot pass); the ones about the installed command run ``fakd`` in a real subprocess.
"""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
from guarantees_support import REPO, assert_one_line_error, random_image, run_fakd, tiny_checkpoint

from fakd.cli import main
from fakd.zoo.checkpoint import load_checkpoint, save_checkpoint
from fakd.zoo.pretrained import MANIFEST_FILE, PRETRAINED_DIR_ENV

SMOKE = ["--config", "smoke", "--no-progress"]
STUDENT = ["train", "--role", "student", *SMOKE, "--set", "student.iterations=1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("fakd "), err
    return err[0]


# -- output and input paths, checked before any work -------------------------------------------

def test_output_paths_that_are_files(checkpoint, tmp_path, capsys):
    image = random_image(tmp_path / "in.png")
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    cases = [
        (["upscale", "--checkpoint", str(checkpoint), str(image), "--output", str(a_file)], "--output"),
        (["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "2", "--json", str(tmp_path)],
         "--json"),
        (["export", str(tmp_path), "--name", "x", "--out-dir", str(a_file)], "--out-dir"),
        (["degrade", "--scale", "2", "--input", str(tmp_path), "--output", str(a_file)], "--output"),
        ([*STUDENT, "--out", str(a_file)], "output"),
    ]
    for argv, option in cases:
        line = one_line(capsys, main(argv))
        assert option in line and ("is not a folder" in line or "is a folder" in line), line
    assert a_file.read_text() == "mine"


def test_evaluate_json_mistake_is_found_before_the_evaluation(tmp_path, monkeypatch, capsys):
    import fakd.commands.evaluate as evaluate

    monkeypatch.setattr(evaluate, "evaluate_model", lambda *a, **k: pytest.fail("evaluated before checking --json"))
    line = one_line(capsys, main(["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "2",
                                  "--json", str(tmp_path)]))
    assert "--json" in line and "is a folder" in line


def _deny(monkeypatch, denied):
    """Make ``denied`` unwritable/unreadable: chmod for a normal user, os.access for root (which ignores modes)."""
    if os.geteuid() != 0:
        denied.chmod(0)
        return
    real = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if os.fspath(path) == os.fspath(denied)
                        else real(path, mode, **kw))


def test_unwritable_output_and_unreadable_input_folders(checkpoint, tmp_path, monkeypatch, capsys):
    image = random_image(tmp_path / "in" / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    _deny(monkeypatch, locked)
    try:
        line = one_line(capsys, main(["upscale", "--checkpoint", str(checkpoint), str(image), "--output",
                                      str(locked / "out")]))
        assert "not writable" in line
        line = one_line(capsys, main(["degrade", "--scale", "2", "--input", str(locked), "--output",
                                      str(tmp_path / "lr")]))
        assert "not readable" in line
        line = one_line(capsys, main(["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "2",
                                      "--json", str(locked / "rows.json")]))
        assert "not writable" in line
    finally:
        locked.chmod(0o755)


def test_disk_full_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    import fakd.atomic as atomic

    def full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    target = tmp_path / "rows.json"
    line = one_line(capsys, main(["evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "4",
                                  "--json", str(target)]))
    assert "No space left on device" in line and "rows.json" in line
    assert list(tmp_path.iterdir()) == []


# -- checkpoints and manifests ----------------------------------------------------------------

@pytest.mark.parametrize("case, needle", [
    ("config is a list", "model_config is not a mapping"),
    ("config without arch", "no architecture name"),
    ("scale is text", "scale is 'four'"),
    ("state holds text", "model_state is not a mapping"),
    ("absurd width", "n_feats=40000"),
    ("too many parameters", "billion parameters"),
    ("bad option value", "n_feats"),
])
def test_malformed_weights_only_checkpoint(case, needle, checkpoint, tmp_path, capsys):
    payload = load_checkpoint(checkpoint)
    config, state = dict(payload["model_config"]), dict(payload["model_state"])
    change = {
        "config is a list": lambda: payload.update(model_config=[1, 2]),
        "config without arch": lambda: payload.update(model_config={k: v for k, v in config.items() if k != "arch"}),
        "scale is text": lambda: payload.update(model_config={**config, "scale": "four"}),
        "state holds text": lambda: payload.update(model_state={**state, "head.0.weight": "x"}),
        "absurd width": lambda: payload.update(model_config={**config, "n_feats": 40000}),
        "too many parameters": lambda: payload.update(model_config={**config, "n_feats": 9000, "n_resblocks": 9}),
        "bad option value": lambda: payload.update(model_config={**config, "n_feats": "wide"}),
    }[case]
    change()
    bad = save_checkpoint({key: value for key, value in payload.items() if key not in ("format", "version")},
                          tmp_path / "bad.pt")
    image = random_image(tmp_path / "in.png")
    assert needle in one_line(capsys, main(["upscale", "--checkpoint", str(bad), str(image), "--output",
                                            str(tmp_path / "out")]))
    assert needle in one_line(capsys, main(["profile", "--model", str(bad), "--scale", "2", "--no-latency"]))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field, value", [("size_bytes", "big"), ("name", 3), ("recorded_set5", [1]),
                                          ("seed", "zero"), ("scale", True)])
def test_manifest_with_wrong_field_types(field, value, tmp_path, monkeypatch, capsys):
    from fakd.zoo.pretrained import package_pretrained_dir

    manifest = json.loads((package_pretrained_dir() / MANIFEST_FILE).read_text())
    entry = manifest["models"][0]
    entry[field] = value
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"models": [entry]}))
    monkeypatch.setenv(PRETRAINED_DIR_ENV, str(tmp_path))
    assert f"field {field!r}" in one_line(capsys, main(["export", "--list"]))
    line = one_line(capsys, main(["profile", "--model", f"fakd:{entry['name']}", "--scale", "4", "--no-latency"]))
    assert "manifest" in line and field in line


# -- configs -----------------------------------------------------------------------------------

@pytest.mark.parametrize("override, needle", [
    ("seed=123456789012345678901234567890", "seed must be in"),
    ("student.min_lr=-1", "student.min_lr"),
    ("distill.weights.fakd=.inf", "finite"),
    ("data.batch_size=1000000000", "GiB"),
    ("student.model.overrides.n_feats=40000", "n_feats=40000"),
    ("threads=99999999", "threads"),
])
def test_absurd_config_values(override, needle, tmp_path, capsys):
    assert needle in one_line(capsys, main([*STUDENT, "--set", override, "--out", str(tmp_path / "run")]))
    assert not (tmp_path / "run").exists()


def test_infinite_weight_on_the_command_line(checkpoint, tmp_path, capsys):
    teacher = tiny_checkpoint(tmp_path / "t.pt", scale=4)
    line = one_line(capsys, main(["distill", "--teacher", str(teacher), "--method", "fakd", "--weight", "inf", *SMOKE,
                                  "--out", str(tmp_path / "run")]))
    assert "finite" in line and not (tmp_path / "run").exists()


def test_corrupt_yaml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("teacher: [1, 2\nstudent: {\n  a: b\n c: d\n")
    assert "not valid YAML" in one_line(capsys, main([*STUDENT[:3], "--config", str(bad), "--out",
                                                      str(tmp_path / "run")]))
    run = tmp_path / "done"
    assert main([*STUDENT, "--out", str(run)]) == 0
    capsys.readouterr()
    (run / "config.yaml").write_text("scale: [4\nseed: {\n  x\n")
    line = one_line(capsys, main([*STUDENT, "--out", str(run), "--resume"]))
    assert "damaged" in line


def test_export_of_an_unfinished_run_says_so(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*STUDENT, "--out", str(run)]) == 0
    (run / "summary.json").unlink()  # as after a kill: checkpoints, but no summary
    capsys.readouterr()
    assert "not finished" in one_line(capsys, main(["export", str(run), "--name", "x", "--out-dir",
                                                    str(tmp_path / "shipped")]))
    assert not (tmp_path / "shipped").exists()


def test_too_small_image_names_the_file(tmp_path, capsys):
    random_image(tmp_path / "set" / "ok.png", height=64, width=64)
    random_image(tmp_path / "set" / "tiny.png", height=4, width=4)
    line = one_line(capsys, main(["evaluate", "--model", "bicubic", "--dataset", str(tmp_path / "set"),
                                  "--scale", "2"]))
    assert "'tiny'" in line and "4x4" in line and "too small" in line


# -- the installed command ---------------------------------------------------------------------

@pytest.mark.slow
def test_cli_subprocess_lines(checkpoint, tmp_path):
    """The same promises through the console entry point, in real processes."""
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    assert_one_line_error(run_fakd("upscale", "--checkpoint", checkpoint, a_file, "--output", a_file),
                          "not a folder")
    assert_one_line_error(run_fakd(*STUDENT, "--set", "seed=99999999999999999999", "--out", tmp_path / "r"), "seed")
    assert_one_line_error(run_fakd("evaluate", "--model", "bicubic", "--dataset", "skimage-test", "--scale", "2",
                                   "--json", tmp_path), "is a folder")


def _stderr_on_a_terminal(*args) -> str:
    """Run fakd with stderr on a pseudo-terminal; returns what it wrote there."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # a 200-column terminal
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "fakd.cli", *map(str, args)], stdout=subprocess.DEVNULL,
                               stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=600)
    os.close(controller)
    assert process.returncode == 0
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_progress_bars_only_on_a_terminal(checkpoint, tmp_path):
    random_image(tmp_path / "in" / "a.png", height=40, width=40)
    upscale = ["upscale", "--checkpoint", checkpoint, tmp_path / "in", "--tile", "16", "--overlap", "4"]
    piped = run_fakd(*upscale, "--output", tmp_path / "piped")
    assert piped.returncode == 0 and "tile" not in piped.stderr and "%" not in piped.stderr
    on_terminal = _stderr_on_a_terminal(*upscale, "--output", tmp_path / "tty")
    assert "upscaling a.png" in on_terminal and "9/9" in on_terminal  # 3x3 tiles of 16 px
    evaluate = _stderr_on_a_terminal("evaluate", "--model", "bicubic", "--checkpoint", checkpoint, "--dataset",
                                     "skimage-test", "--scale", "2")
    assert "bicubic on skimage-test" in evaluate and "tiny on skimage-test" in evaluate
