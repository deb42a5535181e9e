"""A trained model in the formats other code loads: the official RCAN/EDSR layout (.pt), the same in
.safetensors, and ONNX.

- ``official``: ``torch.save`` of the official code's state dict on 0-255 pixels (``sub_mean``/``add_mean``
  included): ``model.load_state_dict(torch.load(FILE))`` in yulunzhang/RCAN or EDSR-PyTorch, and spandrel.
- ``safetensors``: the same tensors as .safetensors (spandrel, and any safetensors reader), with EDSR's
  ``res_scale`` in the metadata (``fakd_res_scale``) since the weights do not hold it.
- ``onnx``: the fakd network ([0, 1] RGB in, [0, 1] out, NCHW float32; batch, height and width dynamic),
  exported with torch's TorchScript-based exporter and checked against torch with onnxruntime.

Each file is checked before it is written (read back and run on a random LR image beside the model:
the max abs difference is returned) and written atomically; a check that fails writes nothing.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from fakd.atomic import write_bytes_atomically
from fakd.errors import FakdError
from fakd.zoo.official import official_state_dict, recognise
from fakd.zoo.weights_file import SAFETENSORS_RES_SCALE

FORMATS = ("official", "safetensors", "onnx")
OFFICIAL_ARCHITECTURES = ("rcan", "edsr")
SUFFIXES = {"official": ".pt", "safetensors": ".safetensors", "onnx": ".onnx"}
ONNX_OPSET = 17
CHECK_SIZE = (1, 3, 24, 20)  # the random LR image the round trip is checked on
TOLERANCE = 1e-3            # max abs difference in [0, 1] pixels beyond which nothing is written


def export_weights(model: nn.Module, *, fmt: str, out: str | Path) -> dict:
    """Write ``model`` (a fakd RCAN/EDSR in eval mode) to ``out`` in format ``fmt``; returns
    {"out", "format", "max_abs_difference", "checked_with"}."""
    if fmt not in FORMATS:
        raise FakdError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    out = Path(out)
    if out.suffix != SUFFIXES[fmt]:
        raise FakdError(f"--out {str(out)!r}: --format {fmt} writes a {SUFFIXES[fmt]} file")
    if fmt != "onnx" and model.config.get("arch") not in OFFICIAL_ARCHITECTURES:
        raise FakdError(f"--format {fmt} writes fakd's RCAN/EDSR in the official layout; this is a "
                        f"{model.config.get('spandrel_arch', model.config.get('arch'))} network: use --format onnx")
    model = model.eval().cpu()
    data, difference, checked_with = _EXPORTERS[fmt](model)
    if not difference <= TOLERANCE:
        raise FakdError(f"the {fmt} export does not compute what the model computes (max abs difference "
                        f"{difference:.3g} > {TOLERANCE:g}); nothing written")
    write_bytes_atomically(out, data)
    return {"out": str(out), "format": fmt, "max_abs_difference": difference, "checked_with": checked_with}


def _official_bytes(model: nn.Module) -> tuple[bytes, float, str]:
    state = official_state_dict(model)
    stream = io.BytesIO()
    torch.save(state, stream)
    reread = torch.load(io.BytesIO(stream.getvalue()), weights_only=True)
    return stream.getvalue(), _state_difference(model, reread, res_scale=_res_scale(model)), "fakd's reader"


def _safetensors_bytes(model: nn.Module) -> tuple[bytes, float, str]:
    from safetensors.torch import load, save

    state = {key: value.contiguous() for key, value in official_state_dict(model).items()}
    metadata = {"format": "pt", "fakd_layout": f"official-{model.config['arch']}"}
    if _res_scale(model) is not None:
        metadata[SAFETENSORS_RES_SCALE] = repr(float(_res_scale(model)))
    data = save(state, metadata=metadata)
    return data, _state_difference(model, load(data), res_scale=_res_scale(model)), "fakd's reader"


def _onnx_bytes(model: nn.Module) -> tuple[bytes, float, str]:
    try:
        import onnxruntime
    except ModuleNotFoundError:
        raise FakdError("--format onnx needs onnx and onnxruntime: pip install 'fakd[onnx]'") from None
    stream = io.BytesIO()
    sample = torch.rand(*CHECK_SIZE, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (sample,), stream, dynamo=False, opset_version=ONNX_OPSET, input_names=["lr"],
                          output_names=["sr"], dynamic_axes={"lr": {0: "batch", 2: "height", 3: "width"},
                                                             "sr": {0: "batch", 2: "out_height", 3: "out_width"}})
    data = stream.getvalue()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    check = torch.rand(1, 3, CHECK_SIZE[2] + 7, CHECK_SIZE[3] + 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(check).numpy()
    actual = session.run(None, {"lr": check.numpy()})[0]
    return data, float(abs(actual - expected).max()), f"onnxruntime {onnxruntime.__version__}"


def _state_difference(model: nn.Module, state: dict, *, res_scale) -> float:
    """Max abs difference between ``model`` and the network fakd rebuilds from the exported tensors."""
    from fakd.models import build_model_from_config

    recognised = recognise(state, where="the export", res_scale=res_scale)
    rebuilt = build_model_from_config(dict(recognised.model_config))
    rebuilt.load_state_dict(recognised.model_state)
    sample = torch.rand(*CHECK_SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((rebuilt.eval()(sample) - model(sample)).abs().max())


def _res_scale(model: nn.Module) -> float | None:
    return model.config.get("res_scale") if model.config.get("arch") == "edsr" else None


_EXPORTERS = {"official": _official_bytes, "safetensors": _safetensors_bytes, "onnx": _onnx_bytes}
