"""Weights of the official RCAN / EDSR code (and BasicSR's) ↔ fakd's own RCAN / EDSR.

fakd's networks are the official ones with three renames (``head.0`` → ``head``, the body's last conv
``body.{n}`` → ``body_tail``, the mean shift a constant instead of the 1×1 convs ``sub_mean``/``add_mean``)
and another pixel range: the official weights act on pixels in [0, ``rgb_range``] (255 for every released
model), fakd's on [0, 1]. Between the two ranges every 3×3 conv bias is divided by ``rgb_range`` and the
channel-attention squeeze conv ``conv_du.0.weight`` multiplied by it (its input, the pooled features, is
``rgb_range`` times larger); every other tensor is unchanged, and the network computes the same function
(up to float rounding).

BasicSR's RCAN and EDSR are the same networks under other names (``conv_first``, ``conv_after_body``,
``upsample``, ``conv_last``, ...; the mean a buffer, ``img_range`` 255): they are renamed to the official
layout first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from fakd.errors import FakdError
from fakd.models import build_model_from_config
from fakd.models.common import DIV2K_RGB_MEAN
from fakd.models.registry import check_model_size

LAYOUTS = {
    "official-rcan": "official RCAN (yulunzhang/RCAN, EDSR-PyTorch's RCAN)",
    "official-edsr": "official EDSR (EDSR-PyTorch)",
    "basicsr-rcan": "BasicSR RCAN",
    "basicsr-edsr": "BasicSR EDSR",
}
# Keys each layout always has (a network with at least one group/block): the nearest layout of an
# unrecognised state dict is the one with most of them.
SIGNATURES = {
    "official-rcan": ("head.0.weight", "body.0.body.0.body.0.weight", "body.0.body.0.body.3.conv_du.0.weight",
                      "tail.0.0.weight", "tail.1.weight", "sub_mean.weight", "add_mean.weight"),
    "official-edsr": ("head.0.weight", "body.0.body.0.weight", "body.0.body.2.weight", "tail.0.0.weight",
                      "tail.1.weight", "sub_mean.weight", "add_mean.weight"),
    "basicsr-rcan": ("conv_first.weight", "body.0.residual_group.0.rcab.0.weight",
                     "body.0.residual_group.0.rcab.3.attention.1.weight", "conv_after_body.weight",
                     "upsample.0.weight", "conv_last.weight"),
    "basicsr-edsr": ("conv_first.weight", "body.0.conv1.weight", "body.0.conv2.weight", "conv_after_body.weight",
                     "upsample.0.weight", "conv_last.weight"),
}
# BasicSR's fixed pixel range (its default img_range; the mean is a buffer, not in the weights).
BASICSR_RGB_RANGE = 255.0
# EDSR's residual scaling is not in the weights: the paper's EDSR (32 blocks × 256) uses 0.1, the
# baseline (16 × 64) and every other size 1.
EDSR_RES_SCALE_PRESETS = {(32, 256): 0.1}
PIXEL_RANGES = (255.0, 1.0)
MEAN_TOLERANCE = 1e-3  # relative, on the mean shift's bias


class UnknownLayout(FakdError):
    """The state dict lacks a key every known layout has: not an official/BasicSR RCAN or EDSR at all."""


@dataclass(frozen=True)
class Recognised:
    """A state dict recognised as an official or BasicSR network, converted to fakd's."""

    layout: str               # a key of LAYOUTS
    model_config: dict        # fakd's model config (rgb_range 1)
    model_state: dict         # fakd's state dict, [0, 1] units
    rgb_range: float          # the pixel range the source's weights act on
    res_scale_source: str     # where EDSR's res_scale came from ("" for RCAN)

    def describe(self) -> str:
        """One line: the layout, its sizes and the conversion."""
        config = self.model_config
        if config["arch"] == "rcan":
            sizes = (f"{config['n_resgroups']} groups x {config['n_resblocks']} blocks, {config['n_feats']} "
                     f"features, reduction {config['reduction']}")
        else:
            sizes = (f"{config['n_resblocks']} blocks, {config['n_feats']} features, res_scale "
                     f"{config['res_scale']:g} ({self.res_scale_source})")
        units = (f"0-{self.rgb_range:g} weights converted to [0, 1] pixels" if self.rgb_range != 1
                 else "[0, 1] weights")
        return f"{LAYOUTS[self.layout]} x{config['scale']}, {sizes}; {units}"


def nearest_layout(state: dict) -> tuple[str, str | None]:
    """(the layout with most signature keys present, its first missing signature key or None)."""
    scores = {layout: sum(key in state for key in keys) for layout, keys in SIGNATURES.items()}
    layout = max(scores, key=scores.get)
    missing = [key for key in SIGNATURES[layout] if key not in state]
    return layout, (missing[0] if missing else None)


def recognise(state: dict, *, where: str, res_scale: float | None = None) -> Recognised:
    """fakd's config and weights for an official / BasicSR state dict; anything else → FakdError naming the
    nearest layout and the first key or shape that did not match."""
    layout, missing = nearest_layout(state)
    if missing is not None:
        raise UnknownLayout(f"{where} is not a model fakd knows: nearest layout {LAYOUTS[layout]}, "
                        f"but key {missing!r} is missing (first keys: {_first_keys(state)})")
    original_names = {key: key for key in state}
    if layout.startswith("basicsr"):
        state, original_names = _basicsr_to_official(state)
        rgb_range = BASICSR_RGB_RANGE
    else:
        rgb_range = _pixel_range(state, where=where)
    arch = layout.split("-")[1]
    config, res_scale_source = _official_config(state, arch=arch, res_scale=res_scale, where=where)
    _check_against_layout(state, config=config, rgb_range=rgb_range, where=where, layout=layout,
                          original_names=original_names)
    fakd_state = to_fakd_state(state, n_blocks=_n_blocks(config), rgb_range=rgb_range)
    return Recognised(layout=layout, model_config=config, model_state=fakd_state, rgb_range=rgb_range,
                      res_scale_source=res_scale_source)


def official_state_dict(model: nn.Module, *, rgb_range: float = 255.0) -> dict[str, torch.Tensor]:
    """The official layout of a fakd RCAN/EDSR on pixels in [0, ``rgb_range``] (with ``sub_mean``/``add_mean``),
    as the official code, spandrel and :func:`recognise` load it."""
    n_blocks = len(model.body)
    state = {}
    for key, tensor in model.state_dict().items():
        state[_official_name(key, n_blocks=n_blocks)] = _rescale(key, tensor.detach().clone(), factor=rgb_range)
    mean = torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32)
    identity = torch.eye(3, dtype=torch.float32).view(3, 3, 1, 1)
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        state[f"{name}.weight"] = identity.clone()
        state[f"{name}.bias"] = sign * rgb_range * mean
    return state


def to_fakd_state(state: dict, *, n_blocks: int, rgb_range: float) -> dict[str, torch.Tensor]:
    """fakd's state dict ([0, 1] units) from an official one on [0, ``rgb_range``] pixels."""
    converted = {}
    for key, tensor in state.items():
        if key.startswith(("sub_mean.", "add_mean.")):
            continue
        name = _fakd_name(key, n_blocks=n_blocks)
        converted[name] = _rescale(name, tensor.detach().to(torch.float32).clone(), factor=1.0 / rgb_range)
    return converted


def _rescale(fakd_key: str, tensor: torch.Tensor, *, factor: float) -> torch.Tensor:
    """A tensor taken from [0, 1] units to ``factor``× larger pixels (fakd → official: factor = rgb_range)."""
    if ".conv_du." in fakd_key:
        return tensor / factor if fakd_key.endswith("conv_du.0.weight") else tensor
    return tensor * factor if fakd_key.endswith(".bias") else tensor


def _official_name(key: str, *, n_blocks: int) -> str:
    if key.startswith("head."):
        return "head.0." + key[len("head."):]
    if key.startswith("body_tail."):
        return f"body.{n_blocks}." + key[len("body_tail."):]
    return key


def _fakd_name(key: str, *, n_blocks: int) -> str:
    if key.startswith("head.0."):
        return "head." + key[len("head.0."):]
    if key.startswith(f"body.{n_blocks}."):
        return "body_tail." + key[len(f"body.{n_blocks}."):]
    return key


def _n_blocks(config: dict) -> int:
    return config["n_resgroups"] if config["arch"] == "rcan" else config["n_resblocks"]


def _pixel_range(state: dict, *, where: str) -> float:
    """The pixel range the mean shift says (sub_mean = identity 1×1 conv, bias −range × DIV2K mean);
    another mean or shape → FakdError."""
    mean = torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float64)
    identity = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)
    biases = {}
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        weight, bias = state.get(f"{name}.weight"), state.get(f"{name}.bias")
        if weight is None or bias is None or tuple(weight.shape) != (3, 3, 1, 1) or tuple(bias.shape) != (3,):
            raise FakdError(f"{where}: {name} is not the 3-colour 1x1 mean-shift conv of the official code")
        if not torch.allclose(weight.to(torch.float64), identity, atol=1e-6):
            raise FakdError(f"{where}: {name}.weight is not the identity (a mean shift with std other than 1); "
                            f"fakd's RCAN/EDSR divide by no std: refused")
        biases[name] = sign * bias.to(torch.float64)
    for rgb_range in PIXEL_RANGES:
        expected = rgb_range * mean
        if all(torch.allclose(bias, expected, rtol=MEAN_TOLERANCE, atol=0) for bias in biases.values()):
            return rgb_range
    shown = ", ".join(f"{value:.4f}" for value in biases["sub_mean"].tolist())
    raise FakdError(f"{where}: its mean shift subtracts ({shown}), not DIV2K's mean {DIV2K_RGB_MEAN} "
                    f"x 255 or x 1, the mean fakd's RCAN/EDSR are built on: refused")


def _official_config(state: dict, *, arch: str, res_scale: float | None, where: str) -> tuple[dict, str]:
    """fakd's model config from the tensors of an official state dict (and where res_scale came from)."""
    head = state["head.0.weight"]
    n_feats, n_colors = int(head.shape[0]), int(head.shape[1])
    config: dict = {"arch": arch, "scale": _official_scale(state, n_feats=n_feats, where=where)}
    if arch == "rcan":
        squeezed = int(state["body.0.body.0.body.3.conv_du.0.weight"].shape[0])
        config.update(n_resgroups=_count(state, r"body\.(\d+)\.body\.0\.body\.0\.weight"),
                      n_resblocks=_count(state, r"body\.0\.body\.(\d+)\.body\.0\.weight"),
                      n_feats=n_feats, reduction=max(1, n_feats // max(squeezed, 1)))
        source = ""
    else:
        n_resblocks = _count(state, r"body\.(\d+)\.body\.0\.weight")
        if res_scale is None:
            res_scale = EDSR_RES_SCALE_PRESETS.get((n_resblocks, n_feats), 1.0)
            source = ("the paper's EDSR" if (n_resblocks, n_feats) in EDSR_RES_SCALE_PRESETS
                      else "the default, not held by the weights") + "; fakd convert --res-scale X for another"
        else:
            source = "given"
        config.update(n_resblocks=n_resblocks, n_feats=n_feats, res_scale=float(res_scale))
    config.update(n_colors=n_colors, rgb_range=1.0)
    check_model_size(dict(config), where=where)
    return config, source


def _official_scale(state: dict, *, n_feats: int, where: str) -> int:
    """2**n for n (conv, PixelShuffle(2)) pairs in ``tail.0``, 3 for one conv to 9×n_feats channels."""
    convs = _count(state, r"tail\.0\.(\d+)\.weight")
    first = state["tail.0.0.weight"].shape[0]
    if convs == 1 and first == 9 * n_feats:
        return 3
    if first == 4 * n_feats:
        return 2 ** convs
    raise FakdError(f"{where}: the upsampler tail.0.0 has {first} output channels, neither 4x nor 9x the "
                    f"{n_feats} features: not an upsampler fakd knows")


def _count(state: dict, pattern: str) -> int:
    """How many distinct indices the first group of ``pattern`` takes in the keys."""
    regex = re.compile(pattern + "$")
    return len({match.group(1) for key in state if (match := regex.match(key))})


def _check_against_layout(state: dict, *, config: dict, rgb_range: float, where: str, layout: str,
                          original_names: dict) -> None:
    """Every key and shape equals those of the official layout of the inferred network (first difference →
    FakdError)."""
    with torch.device("meta"):
        expected = official_state_dict(build_model_from_config(dict(config)), rgb_range=rgb_range)
    for key, tensor in expected.items():
        if key not in state:
            raise FakdError(f"{where}: looks like {LAYOUTS[layout]} but key {key!r} is missing")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise FakdError(f"{where}: looks like {LAYOUTS[layout]} but {original_names.get(key, key)!r} has shape "
                            f"{tuple(state[key].shape)}, expected {tuple(tensor.shape)}")
    extra = [key for key in state if key not in expected]
    if extra:
        raise FakdError(f"{where}: looks like {LAYOUTS[layout]} but has an unexpected key "
                        f"{original_names.get(extra[0], extra[0])!r}")


BASICSR_RENAMES = (
    (r"conv_first\.", "head.0."),
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.1\.", r"body.\1.body.\2.body.3.conv_du.0."),
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.3\.", r"body.\1.body.\2.body.3.conv_du.2."),
    (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.", r"body.\1.body.\2.body."),
    (r"body\.(\d+)\.conv1\.", r"body.\1.body.0."),
    (r"body\.(\d+)\.conv2\.", r"body.\1.body.2."),
    (r"upsample\.", "tail.0."),
    (r"conv_last\.", "tail.1."),
)


def _basicsr_to_official(state: dict) -> tuple[dict, dict]:
    """BasicSR's names → the official ones (``body.g.conv`` → ``body.g.body.{blocks}``, ``conv_after_body``
    → ``body.{groups}``), plus the mean shift BasicSR keeps as a buffer; (state, official → original names)."""
    groups = _count(state, r"body\.(\d+)\.(?:residual_group\.0\.rcab\.0|conv1)\.weight")
    blocks = _count(state, r"body\.0\.residual_group\.(\d+)\.rcab\.0\.weight")
    renamed, names = {}, {}
    for key, tensor in state.items():
        name = key
        if key.startswith("conv_after_body."):
            name = f"body.{groups}." + key[len("conv_after_body."):]
        elif re.match(r"body\.\d+\.conv\.", key):
            name = re.sub(r"body\.(\d+)\.conv\.", lambda match: f"body.{match.group(1)}.body.{blocks}.", key)
        else:
            for pattern, replacement in BASICSR_RENAMES:
                if re.match(pattern, name):
                    name = re.sub("^" + pattern, replacement, name)
                    break
        renamed[name], names[name] = tensor, key
    mean = torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32)
    for name, sign in (("sub_mean", -1.0), ("add_mean", 1.0)):
        renamed[f"{name}.weight"] = torch.eye(3).view(3, 3, 1, 1)
        renamed[f"{name}.bias"] = sign * BASICSR_RGB_RANGE * mean
    return renamed, names


def _first_keys(state: dict, count: int = 3) -> str:
    keys = list(state)[:count]
    return ", ".join(repr(key) for key in keys) + (", ..." if len(state) > count else "") if keys else "none"
