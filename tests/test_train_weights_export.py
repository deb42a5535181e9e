"""fakd export --format official | safetensors | onnx: the files others load compute what the student computes.

References: spandrel (loads the official layout and .safetensors with its own RCAN/EDSR), the EDSR-PyTorch
forward written out in test_zoo_official, onnxruntime for the ONNX graph.
"""

import json
import subprocess
import sys

import pytest
import torch
from test_zoo_official import _edsr, _edsr_pytorch_forward, _rcan, _run

from fakd.cli import main
from fakd.zoo.checkpoint import load_model_from_checkpoint, save_checkpoint


def _checkpoint(tmp_path, model, name="student.pt"):
    return save_checkpoint({"model_config": dict(model.config), "model_state": model.state_dict(),
                            "model_name": "student", "role": "distill", "iteration": 1}, tmp_path / name)


def _spandrel_model(path):
    from fakd.models.spandrel_import import spandrel_registry

    spandrel, registry, _ = spandrel_registry()
    return spandrel.ModelLoader(registry=registry).load_from_file(path).model.eval()


@pytest.mark.parametrize("fmt, suffix", [("official", ".pt"), ("safetensors", ".safetensors")])
def test_official_layout_exports_load_in_spandrel_and_back_in_fakd(tmp_path, fmt, suffix, capsys):
    model = _rcan(scale=2)
    out = tmp_path / f"student{suffix}"
    assert main(["export", str(_checkpoint(tmp_path, model)), "--format", fmt, "--out", str(out)]) == 0
    assert "max abs difference" in capsys.readouterr().out
    lr = torch.rand(1, 3, 12, 10)
    expected = _run(model, lr)
    assert (_run(_spandrel_model(out), lr) - expected).abs().max().item() * 255 < 2e-3
    assert (_run(load_model_from_checkpoint(out, scale=2), lr) - expected).abs().max().item() < 1e-5


def test_edsr_export_matches_the_official_forward_and_keeps_res_scale(tmp_path):
    model = _edsr(scale=2, res_scale=0.25)
    out = tmp_path / "edsr.safetensors"
    assert main(["export", str(_checkpoint(tmp_path, model)), "--format", "safetensors", "--out", str(out)]) == 0
    assert load_model_from_checkpoint(out).config["res_scale"] == 0.25  # from the file's metadata
    official = tmp_path / "edsr.pt"
    assert main(["export", str(_checkpoint(tmp_path, model)), "--format", "official", "--out", str(official)]) == 0
    state = torch.load(official, weights_only=True)
    lr = torch.rand(1, 3, 8, 9)
    reference = _edsr_pytorch_forward(state, lr, res_scale=0.25, n_resblocks=3)
    assert (_run(model, lr) - reference).abs().max().item() * 255 < 1e-3


def test_onnx_export_runs_in_onnxruntime_at_other_sizes(tmp_path, capsys):
    import onnxruntime

    model = _rcan(scale=4)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("{}\n")
    _checkpoint(run / "checkpoints", model, name="best.pt")
    out = tmp_path / "student.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime" in printed and "max abs difference" in printed
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    lr = torch.rand(2, 3, 13, 17)
    actual = torch.from_numpy(session.run(None, {"lr": lr.numpy()})[0])
    assert actual.shape == (2, 3, 52, 68)
    assert (actual - _run(model, lr)).abs().max().item() < 1e-4

    json_out = tmp_path / "cost.json"
    assert main(["profile", "--model", str(_checkpoint(tmp_path, model)), "--model", str(out), "--scale", "4",
                 "--latency-size", "16", "--warmup", "0", "--repeats", "1", "--json", str(json_out)]) == 0
    rows = json.loads(json_out.read_text())["rows"]
    assert rows[1]["params"] == rows[0]["params"] and rows[1]["multi_adds"] is None
    assert rows[0]["latency_s"] > 0 and rows[1]["latency_s"] > 0


@pytest.mark.parametrize("arguments, message", [
    (["--format", "onnx", "--out", "student.pt"], "--format onnx writes a .onnx file"),
    (["--format", "official"], "needs RUN_DIR (or a model file) and --out FILE"),
    (["--format", "official", "--out", "x.pt", "--name", "x"], "--name is for --format fakd"),
])
def test_bad_export_arguments_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    source = _checkpoint(tmp_path, _rcan(scale=2))
    before = sorted(path.name for path in tmp_path.iterdir())
    assert main(["export", str(source), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and error.count("\n") == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_spandrel_imports_beside_a_torchvision_that_does_not_load(tmp_path):
    """The CPU torch wheel with the registry's torchvision: importing torchvision raises RuntimeError."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    code = ("import sys; from fakd.models.spandrel_import import spandrel_registry; "
            "spandrel, registry, left_out = spandrel_registry(); "
            "print(len(registry), left_out, 'RCAN' in registry, 'torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    count, rest = done.stdout.split(" ", 1)
    assert int(count) > 30 and rest.strip() == "('LaMa', 'RestoreFormer') True False"
