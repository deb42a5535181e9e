"""Official RCAN / EDSR-PyTorch weights, BasicSR checkpoints and .safetensors files load as fakd's networks.

The official-layout files are made here: random weights taken through the inverse conversion
(``official_state_dict``). References: spandrel's RCAN (an independent implementation of the official
network), an EDSR forward written out below from the EDSR-PyTorch layout, BasicSR's key names written out.
"""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from fakd.cli import main
from fakd.errors import FakdError
from fakd.models import EDSR, RCAN
from fakd.zoo.checkpoint import load_checkpoint, load_model_from_checkpoint
from fakd.zoo.official import official_state_dict
from fakd.zoo.pretrained import file_sha256

def _perturbed(model):
    """Non-zero biases everywhere (torch's default init is small), so the bias rule is exercised."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def _rcan(scale=4):
    torch.manual_seed(0)
    return _perturbed(RCAN(scale=scale, n_resgroups=3, n_resblocks=2, n_feats=32, reduction=16))


def _edsr(scale=2, res_scale=0.1):
    torch.manual_seed(0)
    return _perturbed(EDSR(scale=scale, n_resblocks=3, n_feats=16, res_scale=res_scale))


def _official_file(tmp_path, model, name="official.pt"):
    path = tmp_path / name
    torch.save(official_state_dict(model), path)
    return path


def _run(model, lr):
    with torch.no_grad():
        return model(lr.clone())


def test_official_rcan_computes_what_spandrels_rcan_computes(tmp_path):
    from fakd.models.spandrel_import import spandrel_registry

    spandrel, registry, _ = spandrel_registry()
    path = _official_file(tmp_path, _rcan())
    reference = spandrel.ModelLoader(registry=registry).load_from_file(path)
    assert reference.architecture.id == "RCAN" and reference.scale == 4
    loaded = load_model_from_checkpoint(path, scale=4, arch="rcan")
    assert loaded.config | {} == {"arch": "rcan", "scale": 4, "n_resgroups": 3, "n_resblocks": 2, "n_feats": 32,
                                  "reduction": 16, "n_colors": 3, "rgb_range": 1.0}
    lr = torch.rand(1, 3, 10, 20)
    difference = (_run(loaded, lr) - _run(reference.model.eval(), lr)).abs().max().item() * 255
    assert difference < 2e-3, f"{difference} (0-255 units)"


def _edsr_pytorch_forward(state, lr, *, res_scale, n_resblocks):
    """EDSR-PyTorch's forward on 0-255 pixels, written out from its state-dict layout."""
    conv = lambda x, name: F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"],  # noqa: E731
                                    padding=state[f"{name}.weight"].shape[-1] // 2)
    x = conv(lr * 255, "sub_mean")
    x = conv(x, "head.0")
    res = x
    for block in range(n_resblocks):
        res = res + conv(F.relu(conv(res, f"body.{block}.body.0")), f"body.{block}.body.2") * res_scale
    res = conv(res, f"body.{n_resblocks}") + x
    upsampler = sorted({int(key.split(".")[2]) for key in state if key.startswith("tail.0.")})
    for index in upsampler:
        res = F.pixel_shuffle(conv(res, f"tail.0.{index}"), 2)
    return conv(conv(res, "tail.1"), "add_mean") / 255


def test_official_edsr_matches_the_written_out_forward(tmp_path):
    path = _official_file(tmp_path, _edsr(scale=4, res_scale=0.25))
    state = torch.load(path, weights_only=True)
    loaded = load_model_from_checkpoint(path, res_scale=0.25)
    assert loaded.config["res_scale"] == 0.25 and loaded.scale == 4
    lr = torch.rand(1, 3, 9, 11)
    reference = _edsr_pytorch_forward(state, lr, res_scale=0.25, n_resblocks=3)
    difference = (_run(loaded, lr) - reference).abs().max().item() * 255
    assert difference < 1e-3, f"{difference} (0-255 units)"


def test_edsr_res_scale_defaults_by_size(tmp_path, capsys):
    path = _official_file(tmp_path, _edsr(scale=2, res_scale=1.0))
    assert load_model_from_checkpoint(path).config["res_scale"] == 1.0
    assert "res_scale 1 (the default, not held by the weights" in capsys.readouterr().err


def _basicsr_names(state, *, groups, blocks):
    """The official RCAN layout under BasicSR's names (basicsr/archs/rcan_arch.py), mean shift dropped."""
    renamed = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] in ("sub_mean", "add_mean"):
            continue
        if parts[0] == "head":
            name = "conv_first." + parts[-1]
        elif parts[0] == "tail":
            name = ("upsample." + ".".join(parts[2:])) if parts[1] == "0" else "conv_last." + parts[-1]
        elif parts[1] == str(groups):
            name = "conv_after_body." + parts[-1]
        elif parts[3] == str(blocks):
            name = f"body.{parts[1]}.conv.{parts[-1]}"
        elif "conv_du" in key:
            name = f"body.{parts[1]}.residual_group.{parts[3]}.rcab.3.attention.{int(parts[7]) + 1}.{parts[-1]}"
        else:
            name = f"body.{parts[1]}.residual_group.{parts[3]}.rcab.{parts[5]}.{parts[-1]}"
        renamed[name] = tensor
    return renamed


def test_basicsr_checkpoint_with_module_prefix(tmp_path, capsys):
    model = _rcan(scale=2)
    state = _basicsr_names(official_state_dict(model), groups=3, blocks=2)
    assert "body.0.residual_group.1.rcab.3.attention.3.weight" in state and "body.2.conv.bias" in state
    path = tmp_path / "basicsr.pth"
    torch.save({"params": {"module." + key: value * 0 for key, value in state.items()},
                "params_ema": {"module." + key: value for key, value in state.items()}}, path)
    loaded = load_model_from_checkpoint(path, scale=2)
    assert "BasicSR RCAN x2" in capsys.readouterr().err
    lr = torch.rand(1, 3, 8, 8)
    assert (_run(loaded, lr) - _run(model, lr)).abs().max().item() * 255 < 1e-3


def test_basicsr_edsr_checkpoint(tmp_path, capsys):
    """BasicSR's EDSR (basicsr/archs/edsr_arch.py): conv_first, body.i.conv1/conv2, conv_after_body,
    upsample.k, conv_last; its mean a buffer, img_range 255."""
    model = _edsr(scale=4, res_scale=1.0)
    names = {"head.0": "conv_first", "body.3": "conv_after_body", "tail.1": "conv_last"}
    state = {}
    for key, value in official_state_dict(model).items():
        prefix, leaf = key.rsplit(".", 1)
        if prefix in ("sub_mean", "add_mean"):
            continue
        if prefix in names:
            prefix = names[prefix]
        elif prefix.startswith("tail.0."):
            prefix = "upsample." + prefix.split(".")[2]
        else:  # body.i.body.{0,2}
            block, conv = prefix.split(".")[1], prefix.split(".")[3]
            prefix = f"body.{block}.conv{1 if conv == '0' else 2}"
        state[f"{prefix}.{leaf}"] = value
    assert {"body.2.conv2.weight", "upsample.2.bias", "conv_after_body.weight"} <= set(state)
    path = tmp_path / "basicsr_edsr.pth"
    torch.save({"params": state}, path)
    loaded = load_model_from_checkpoint(path, scale=4)
    assert "BasicSR EDSR x4, 3 blocks, 16 features" in capsys.readouterr().err
    lr = torch.rand(1, 3, 7, 8)
    assert (_run(loaded, lr) - _run(model, lr)).abs().max().item() * 255 < 1e-3


def test_safetensors_file_and_recognition_line(tmp_path, capsys):
    model = _rcan(scale=3)
    path = tmp_path / "rcan.safetensors"
    save_file({key: value.contiguous() for key, value in official_state_dict(model).items()}, str(path))
    loaded = load_model_from_checkpoint(path, scale=3)
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and "official RCAN" in line and "x3, 3 groups x 2 blocks, 32 features" in line
    assert "safetensors" in line and file_sha256(path)[:16] in line
    lr = torch.rand(1, 3, 7, 9)
    assert (_run(loaded, lr) - _run(model, lr)).abs().max().item() * 255 < 1e-3


def test_convert_writes_a_fakd_checkpoint_recording_the_source(tmp_path):
    model = _edsr()
    source = _official_file(tmp_path, model)
    out = tmp_path / "converted.pt"
    assert main(["convert", str(source), "--out", str(out), "--res-scale", "0.1"]) == 0
    payload = load_checkpoint(out)
    assert payload["source"]["sha256"] == file_sha256(source)
    assert payload["source"]["layout"] == "official-edsr" and payload["model_config"]["res_scale"] == 0.1
    lr = torch.rand(1, 3, 6, 6)
    assert (_run(load_model_from_checkpoint(out), lr) - _run(model, lr)).abs().max().item() < 1e-5


# --- bad input: one line, exit 2, nothing written ---------------------------------------------------------

def _refused(tmp_path, capsys, source, *arguments):
    out = tmp_path / "out.pt"
    assert main(["convert", str(source), "--out", str(out), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "Traceback" not in error
    assert not out.exists() and not list(tmp_path.glob(".out.pt*"))
    return error


def test_unrecognised_state_dict_names_the_nearest_layout_and_first_mismatch(tmp_path, capsys):
    state = official_state_dict(_rcan())
    del state["body.0.body.0.body.3.conv_du.0.weight"]
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    error = _refused(tmp_path, capsys, path)
    assert "nearest layout official RCAN" in error and "'body.0.body.0.body.3.conv_du.0.weight' is missing" in error

    state = official_state_dict(_rcan())
    state["body.1.body.0.body.2.weight"] = torch.zeros(32, 32, 5, 5)
    torch.save(state, path)
    assert "'body.1.body.0.body.2.weight' has shape (32, 32, 5, 5), expected (32, 32, 3, 3)" in _refused(
        tmp_path, capsys, path)

    torch.save({"encoder.weight": torch.zeros(3)}, path)
    assert "is not a model fakd knows: nearest layout" in _refused(tmp_path, capsys, path)


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "whole_model.pt"
    torch.save(_rcan(), path)  # a whole pickled module, not weights
    assert "refused: it holds pickled Python objects" in _refused(tmp_path, capsys, path)


def test_a_mean_other_than_div2ks_is_refused(tmp_path, capsys):
    state = official_state_dict(_rcan())
    state["sub_mean.bias"] = -255 * torch.tensor([0.5, 0.5, 0.5])
    path = tmp_path / "other_mean.pt"
    torch.save(state, path)
    error = _refused(tmp_path, capsys, path)
    assert "mean shift subtracts (127.5000, 127.5000, 127.5000), not DIV2K's mean" in error


def test_a_scale_that_disagrees_is_one_line(tmp_path, capsys):
    path = _official_file(tmp_path, _rcan(scale=4))
    assert "is a ×4 model, but ×2 was asked for" in _refused(tmp_path, capsys, path, "--scale", "2")
    with pytest.raises(FakdError, match="×4 model, but ×2 was asked for"):
        load_model_from_checkpoint(path, scale=2)


def test_weights_on_unit_pixels_load_without_conversion(tmp_path):
    model = _rcan(scale=2)
    path = tmp_path / "unit.pt"
    torch.save(official_state_dict(model, rgb_range=1.0), path)
    loaded = load_model_from_checkpoint(path)
    assert torch.equal(loaded.state_dict()["head.bias"], model.state_dict()["head.bias"])
