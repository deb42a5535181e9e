"""Shipped models: the real manifest against its files, one shipped model's recorded Set5 score
reproduced, and ``fakd export`` → ``fakd:<name>`` end to end on a smoke run (in a temporary folder
given by ``$FAKD_PRETRAINED_DIR``), with every error path."""

import json
import shutil

import pytest
import torch
from skimage import data as skimage_data

from fakd.cli import main
from fakd.data.benchmark import open_benchmark_set
from fakd.data.image_io import read_image, write_image
from fakd.train.export import NAME_PATTERN, export_pretrained
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint
from fakd.zoo.pretrained import (
    MANIFEST_FILE,
    PRETRAINED_DIR_ENV,
    file_sha256,
    list_pretrained,
    package_pretrained_dir,
    pretrained_path,
)
from fakd.errors import FakdError
from fakd.metrics import evaluate_model
from fakd.models import build_model_from_config

SMOKE = ["--config", "smoke", "--no-progress"]
TRAINING_ONLY_KEYS = ("optimizer_state", "scheduler_state", "rng_state", "objective_state", "scaler_state")
ENTRY_KEYS = ("name", "file", "sha256", "size_bytes", "preset", "model_config", "scale", "role", "method",
              "weight", "taps", "seed", "profile", "training_data", "iterations", "validation_psnr",
              "recorded_set5", "git_commit", "source_run")


def _one_error_line(capsys, code):
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# The real shipped folder


def test_shipped_manifest_matches_its_files():
    folder = package_pretrained_dir()
    entries = list_pretrained(folder)
    listed = {entry["file"] for entry in entries}
    on_disk = {path.name for path in folder.iterdir()} - {MANIFEST_FILE}
    assert on_disk == listed, f"unlisted files {sorted(on_disk - listed)}, missing files {sorted(listed - on_disk)}"
    names = [entry["name"] for entry in entries]
    assert len(set(names)) == len(names)
    for entry in entries:
        missing = [key for key in ENTRY_KEYS if key not in entry]
        assert not missing, f"{entry['name']}: manifest entry lacks {missing}"
        assert NAME_PATTERN.match(entry["name"])
        assert entry["profile"] != "smoke", f"{entry['name']}: smoke models are test fixtures, not results"
        path = folder / entry["file"]
        assert path.stat().st_size == entry["size_bytes"]
        assert file_sha256(path) == entry["sha256"]
        payload = load_checkpoint(path)
        assert not [key for key in TRAINING_ONLY_KEYS if key in payload], f"{entry['file']} holds training state"
        assert payload["model_config"] == entry["model_config"]
        assert int(payload["model_config"]["scale"]) == entry["scale"]
        assert pretrained_path(entry["name"], folder) == path


def test_a_shipped_model_reproduces_its_recorded_set5_score(shared_data):
    entries = [entry for entry in list_pretrained(package_pretrained_dir()) if entry.get("recorded_set5")]
    if not entries:
        pytest.skip("no models are shipped yet (fakd/pretrained/manifest.json lists none with a Set5 score)")
    students = [entry for entry in entries if entry["role"] == "student"]
    entry = (students or entries)[0]
    model = load_model_from_checkpoint(pretrained_path(entry["name"], package_pretrained_dir()), "cpu")
    dataset = open_benchmark_set("Set5", scale=entry["scale"], data_root=shared_data)
    table = evaluate_model(model, dataset, scale=entry["scale"], device="cpu", progress=False)
    recorded = entry["recorded_set5"]
    assert len(table) == recorded["images"] == 5
    assert float(table["psnr"].mean()) == pytest.approx(recorded["psnr"], abs=1e-3)
    assert float(table["ssim"].mean()) == pytest.approx(recorded["ssim"], abs=1e-5)


# ---------------------------------------------------------------------------------------------
# Export and fakd:<name> on a smoke run


@pytest.fixture(scope="module")
def smoke_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained") / "teacher"
    assert main(["train", "--role", "teacher", *SMOKE, "--set", "teacher.iterations=4", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """A data root whose Set5 is two 96 px crops of scikit-image photographs (fast to evaluate)."""
    root = tmp_path_factory.mktemp("tiny_root")
    (root / "Set5" / "HR").mkdir(parents=True)
    write_image(root / "Set5" / "HR" / "astronaut.png", skimage_data.astronaut()[40:136, 180:276])
    write_image(root / "Set5" / "HR" / "coffee.png", skimage_data.coffee()[100:196, 200:296])
    return root


@pytest.fixture(scope="module")
def exported(smoke_teacher, tiny_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("shipped")
    entry = export_pretrained(smoke_teacher, name="smoke-teacher-x4", data_root=tiny_root, out_dir=folder,
                              device="cpu")
    return folder, entry


def test_export_writes_a_weights_only_checkpoint_and_its_entry(exported, smoke_teacher):
    folder, entry = exported
    path = folder / entry["file"]
    assert entry["file"] == f"smoke-teacher-x4-{entry['sha256'][:8]}.pt"
    assert sorted(item.name for item in folder.iterdir()) == sorted([MANIFEST_FILE, entry["file"]])
    assert json.loads((folder / MANIFEST_FILE).read_text())["models"] == [entry]
    assert entry["sha256"] == file_sha256(path) and entry["size_bytes"] == path.stat().st_size
    payload, best = load_checkpoint(path), load_checkpoint(smoke_teacher / "checkpoints" / "best.pt")
    assert not [key for key in TRAINING_ONLY_KEYS if key in payload]
    assert path.stat().st_size < (smoke_teacher / "checkpoints" / "last.pt").stat().st_size
    assert payload["model_config"] == best["model_config"] == entry["model_config"]
    assert all(torch.equal(payload["model_state"][key], value) for key, value in best["model_state"].items())
    summary = json.loads((smoke_teacher / "summary.json").read_text())
    assert (entry["role"], entry["method"], entry["seed"], entry["profile"], entry["scale"]) == \
        ("teacher", "teacher", 0, "smoke", 4)
    assert entry["preset"] == "rcan-smoke-teacher" and entry["weight"] is None and entry["taps"] == []
    assert entry["iterations"] == 4 and entry["validation_psnr"] == summary["best_val_psnr"]
    assert entry["training_data"]["train_sets"] == ["skimage-train"]
    assert entry["recorded_set5"]["images"] == 2 and entry["recorded_set5"]["data_root"] == "tiny_root0"
    build_model_from_config(dict(entry["model_config"]))  # the recorded config rebuilds the network


def test_fakd_spec_works_in_every_command(exported, smoke_teacher, tiny_root, tmp_path, monkeypatch, capsys):
    folder, entry = exported
    monkeypatch.setenv(PRETRAINED_DIR_ENV, str(folder))
    spec = "fakd:smoke-teacher-x4"
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", spec, "--dataset", "Set5", "--scale", "4", "--data-root",
                 str(tiny_root), "--device", "cpu", "--json", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["model"] == "smoke-teacher-x4" and row["n_images"] == 2
    assert row["psnr"] == pytest.approx(entry["recorded_set5"]["psnr"], abs=1e-9)
    assert row["ssim"] == pytest.approx(entry["recorded_set5"]["ssim"], abs=1e-9)

    assert main(["profile", "--model", spec, "--scale", "4", "--no-latency"]) == 0
    assert "smoke-teacher-x4" in capsys.readouterr().out

    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "crop.png", skimage_data.coffee()[:20, :24])
    assert main(["upscale", "--checkpoint", spec, str(tmp_path / "in"), "--output", str(tmp_path / "up"),
                 "--device", "cpu"]) == 0
    assert read_image(tmp_path / "up" / "crop.png").shape == (80, 96, 3)

    student = tmp_path / "student"
    assert main(["distill", "--teacher", spec, "--method", "fakd", *SMOKE, "--set", "student.iterations=2",
                 "--out", str(student)]) == 0
    job = json.loads((student / "job.json").read_text())
    assert job["teacher_sha256"] == entry["sha256"]

    # The student, exported under the teacher's name, replaces its entry and its file.
    replaced = export_pretrained(student, name="smoke-teacher-x4", data_root=tiny_root, out_dir=folder, device="cpu")
    assert (replaced["role"], replaced["method"], replaced["weight"], replaced["p"]) == ("student", "fakd", 1.0, 1)
    assert replaced["taps"] == [] and replaced["taps_used"] == ["body.2", "body.6", "long_skip"]
    assert replaced["teacher_sha256"] == entry["sha256"]
    assert list_pretrained(folder) == [replaced]
    assert sorted(item.name for item in folder.iterdir()) == sorted([MANIFEST_FILE, replaced["file"]])
    # put the teacher back for the other tests of this module
    assert entry["source_run"] == smoke_teacher.name  # the run's folder name: no path of this machine
    export_pretrained(smoke_teacher, name="smoke-teacher-x4", data_root=tiny_root, out_dir=folder, device="cpu")
    assert list_pretrained(folder)[0]["sha256"] == entry["sha256"]


def test_study_models_fall_back_to_shipped_models(exported, tmp_path, monkeypatch):
    from fakd.analysis.compare import study_models

    folder = tmp_path / "shipped"
    shutil.copytree(exported[0], folder)
    monkeypatch.setenv(PRETRAINED_DIR_ENV, str(folder))
    assert main(["train", "--role", "student", *SMOKE, "--set", "student.iterations=2",
                 "--out", str(tmp_path / "alone")]) == 0
    export_pretrained(tmp_path / "alone", name="smoke-student-none", data_root=None, out_dir=folder)
    models = study_models(profile="smoke", device="cpu")
    assert [(model.name, model.role, model.trained, model.source) for model in models] == [
        ("teacher", "teacher", True, "fakd:smoke-teacher-x4"),
        ("no KD", "student", True, "fakd:smoke-student-none")]
    assert models[0].model.config == exported[1]["model_config"]


def test_export_without_set5_says_why(smoke_teacher, tmp_path, monkeypatch):
    monkeypatch.delenv("FAKD_DATA_ROOT", raising=False)
    entry = export_pretrained(smoke_teacher, name="no-set5", data_root=None, out_dir=tmp_path)
    assert entry["recorded_set5"] is None and "no data root" in entry["recorded_set5_note"]
    (tmp_path / "root").mkdir()
    entry = export_pretrained(smoke_teacher, name="no-set5", data_root=tmp_path / "root", out_dir=tmp_path)
    assert entry["recorded_set5"] is None and "Set5" in entry["recorded_set5_note"]
    assert [item["name"] for item in list_pretrained(tmp_path)] == ["no-set5"]


def test_damaged_file_is_refused(exported, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "shipped"
    shutil.copytree(exported[0], folder)
    path = folder / exported[1]["file"]
    content = bytearray(path.read_bytes())
    content[-100] ^= 0xFF
    path.write_bytes(bytes(content))
    with pytest.raises(FakdError, match="sha256"):
        pretrained_path("smoke-teacher-x4", folder)
    monkeypatch.setenv(PRETRAINED_DIR_ENV, str(folder))
    line = _one_error_line(capsys, main(["evaluate", "--checkpoint", "fakd:smoke-teacher-x4",
                                         "--dataset", "skimage-test", "--scale", "4"]))
    assert line.startswith("fakd evaluate: error:") and "sha256" in line
    path.unlink()
    with pytest.raises(FakdError, match="missing"):
        pretrained_path("smoke-teacher-x4", folder)


def test_unknown_names_list_what_is_shipped(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PRETRAINED_DIR_ENV, str(exported[0]))
    line = _one_error_line(capsys, main(["evaluate", "--checkpoint", "fakd:nope", "--dataset", "skimage-test",
                                         "--scale", "4"]))
    assert "'nope'" in line and "shipped: smoke-teacher-x4" in line
    for command in (["profile", "--model", "fakd:nope", "--scale", "4", "--no-latency"],
                    ["upscale", "--checkpoint", "fakd:nope", str(tmp_path), "--output", str(tmp_path / "o")],
                    ["distill", "--teacher", "fakd:nope", *SMOKE, "--out", str(tmp_path / "run")]):
        assert "shipped: smoke-teacher-x4" in _one_error_line(capsys, main(command))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / MANIFEST_FILE).write_text('{"models": []}\n')
    with pytest.raises(FakdError, match="no models are shipped yet"):
        pretrained_path("anything", tmp_path / "empty")


def test_export_errors(smoke_teacher, tmp_path, capsys):
    before = sorted(path.name for path in package_pretrained_dir().iterdir())
    with pytest.raises(FakdError, match="smoke-profile"):
        export_pretrained(smoke_teacher, name="smoke", out_dir=package_pretrained_dir())
    assert sorted(path.name for path in package_pretrained_dir().iterdir()) == before
    with pytest.raises(FakdError, match="pretrained name"):
        export_pretrained(smoke_teacher, name="../evil", out_dir=tmp_path)
    line = _one_error_line(capsys, main(["export", str(tmp_path / "nothing"), "--name", "x",
                                         "--out-dir", str(tmp_path)]))
    assert line.startswith("fakd export: error:") and "holds no finished run" in line
    assert "--name" in _one_error_line(capsys, main(["export", str(smoke_teacher)]))


def test_export_command_and_listing(smoke_teacher, tiny_root, tmp_path, capsys):
    assert main(["export", "--list", "--out-dir", str(tmp_path)]) == 0
    assert "no models are shipped yet" in capsys.readouterr().out
    assert main(["export", str(smoke_teacher), "--name", "cli-teacher", "--data-root", str(tiny_root),
                 "--out-dir", str(tmp_path), "--device", "cpu"]) == 0
    (entry,) = list_pretrained(tmp_path)
    assert f"Set5 {entry['recorded_set5']['psnr']:.3f} dB" in capsys.readouterr().out
    assert main(["export", "--list", "--out-dir", str(tmp_path)]) == 0
    assert "fakd:cli-teacher" in capsys.readouterr().out
