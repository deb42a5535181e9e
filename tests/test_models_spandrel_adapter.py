"""Networks spandrel recognises as fakd models: [0, 1] in and out, the input untouched, named taps at LR resolution.

The networks are spandrel's own classes with small random weights (nothing downloaded); references are
spandrel's forward and SwinIR's token layout written out (``PatchUnEmbed``: tokens are the LR grid in
raster order).
"""

import warnings

import pytest
import torch

from fakd.cli import main
from fakd.distill import FeatureTaps
from fakd.errors import FakdError
from fakd.models import build_model
from fakd.models.spandrel_adapter import SpandrelSR
from fakd.train.distillation import build_objective
from fakd.train.config import load_run_config
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint
from fakd.models.spandrel_import import spandrel_registry


def _quiet(build):
    """Build a spandrel network (spandrel imported through fakd's guard: this machine has no torchvision)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.manual_seed(0)
        return build()


def _swinir():
    spandrel_registry()
    from spandrel.architectures.SwinIR import SwinIR

    return _quiet(lambda: SwinIR(upscale=4, img_size=16, window_size=8, embed_dim=24, depths=[2, 2, 2, 2],
                                 num_heads=[2, 2, 2, 2], mlp_ratio=2, upsampler="pixelshuffledirect",
                                 resi_connection="1conv"))


def _esrgan():
    spandrel_registry()
    from spandrel.architectures.ESRGAN import ESRGAN

    return _quiet(lambda: ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=3, scale=4))


def _saved(tmp_path, net, name):
    path = tmp_path / name
    torch.save(net.state_dict(), path)
    return path


def test_swinir_output_and_token_taps_match_spandrel(tmp_path):
    spandrel_registry()
    net = _swinir().eval()
    model = load_model_from_checkpoint(_saved(tmp_path, net, "swinir.pth"), scale=4)
    assert isinstance(model, SpandrelSR) and model.scale == 4 and model.config["spandrel_arch"] == "SwinIR"
    assert model.default_taps == ["layers.0", "layers.2", "conv_after_body"]
    lr = torch.rand(1, 3, 13, 11)  # SwinIR pads to its window (16 x 16): the maps are cropped back to 13 x 11
    tokens = {}
    handle = net.layers[2].register_forward_hook(lambda module, args, output: tokens.setdefault("out", output))
    with torch.no_grad():
        expected = net(lr.clone())
    handle.remove()
    with torch.no_grad(), FeatureTaps(model, model.default_taps) as taps:
        output = model(lr)
    assert torch.allclose(output, expected, atol=1e-6)
    grid = tokens["out"].transpose(1, 2).reshape(1, 24, 16, 16)[..., :13, :11]  # PatchUnEmbed, then the crop
    assert torch.equal(taps["layers.2"], grid)
    assert taps["conv_after_body"].shape == (1, 24, 13, 11)


def test_the_callers_tensor_is_never_modified():
    """spandrel's RCAN multiplies its input by 255 in place; through the adapter the caller's tensor stays."""
    from fakd.zoo.official import official_state_dict

    spandrel, registry, _ = spandrel_registry()
    state = official_state_dict(build_model("rcan-smoke-student", scale=2))
    model = SpandrelSR(registry.load(state), state_dict=state)
    lr = torch.rand(1, 3, 8, 8)
    before = lr.clone()
    with torch.no_grad():
        model(lr)
    assert torch.equal(lr, before)


def test_rrdb_default_taps_follow_the_relative_depth_rule(tmp_path):
    model = load_model_from_checkpoint(_saved(tmp_path, _esrgan(), "esrgan.pth"))
    # 3 RRDBs and the trunk conv in model.1.sub: 1-based blocks round(1.2) and round(2.8); then the
    # shortcut block's output (after the long skip)
    assert model.default_taps == ["model.1.sub.0", "model.1.sub.2", "model.1"]


def test_spandrel_teacher_in_distillation_is_tapped_at_its_default_taps(tmp_path):
    teacher = load_model_from_checkpoint(_saved(tmp_path, _swinir(), "swinir.pth"))
    student = build_model("rcan-smoke-student", scale=4)
    objective = build_objective(load_run_config("smoke").distill, student=student, teacher=teacher)
    assert objective.teacher_taps == ["layers.0", "layers.2", "conv_after_body"]
    assert objective.student_taps == ["body.2", "body.6", "long_skip"]


def test_rcan_teacher_of_another_depth_gets_the_same_relative_depths():
    teacher = build_model("rcan-smoke-teacher", scale=4, n_resgroups=4)
    objective = build_objective(load_run_config("smoke").distill, student=build_model("rcan-smoke-student", scale=4),
                                teacher=teacher)
    assert objective.teacher_taps == ["body.0", "body.2", "long_skip"]  # groups round(1.2), round(2.8) of 4


@pytest.mark.slow
def test_distill_smoke_with_a_swinir_teacher(tmp_path):
    path = _saved(tmp_path, _swinir(), "swinir.pth")
    assert main(["distill", "--config", "smoke", "--teacher", str(path), "--out", str(tmp_path / "run"),
                 "--no-progress"]) == 0
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_taps_command_lists_shapes_and_defaults(tmp_path, capsys):
    path = _saved(tmp_path, _esrgan(), "esrgan.pth")
    assert main(["taps", str(path), "--size", "10", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "x4" in lines[0] and "10x12 LR input (output 40x48)" in lines[0]
    marked = [line.split()[1:] for line in lines[1:] if line.startswith("*")]
    assert marked == [["model.1.sub.0", "16x10x12"], ["model.1.sub.2", "16x10x12"], ["model.1", "16x10x12"]]
    assert main(["taps", "rcan-smoke-student", "--size", "6", "7"]) == 0
    assert "* long_skip  16x6x7" in capsys.readouterr().out


def test_convert_keeps_a_spandrel_network(tmp_path):
    net = _esrgan().eval()
    out = tmp_path / "converted.pt"
    assert main(["convert", str(_saved(tmp_path, net, "esrgan.pth")), "--out", str(out)]) == 0
    assert load_checkpoint(out)["model_config"]["spandrel_arch"] == "ESRGAN"
    lr = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.allclose(load_model_from_checkpoint(out)(lr), net(lr), atol=1e-6)


def test_a_network_that_is_not_super_resolution_is_refused(tmp_path, capsys):
    spandrel_registry()
    from spandrel.architectures.DnCNN import DnCNN

    path = _saved(tmp_path, _quiet(lambda: DnCNN(in_nc=3, out_nc=3, nc=16, nb=4)), "dncnn.pth")
    with pytest.raises(FakdError, match="not super-resolution"):
        load_model_from_checkpoint(path)
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(FakdError, match="is not a model fakd knows: nearest layout"):
        load_model_from_checkpoint(path)


def test_profile_and_export_of_a_spandrel_network(tmp_path, capsys):
    path = _saved(tmp_path, _swinir(), "swinir.pth")
    assert main(["profile", "--model", str(path), "--scale", "4", "--latency-size", "16", "--repeats", "1",
                 "--warmup", "0"]) == 0
    assert "swinir" in capsys.readouterr().out
    assert main(["export", str(path), "--format", "official", "--out", str(tmp_path / "x.pt")]) == 2
    assert "this is a SwinIR network: use --format onnx" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
