"""Any super-resolution network spandrel recognises (SwinIR, HAT, RRDB/ESRGAN, SPAN, OmniSR, ...) as a fakd
model: RGB in [0, 1] in and out, the caller's tensor never modified, ``scale``, ``config`` and named taps.

Taps are the network's submodules whose output is a feature map at the input's (LR) resolution, found
by one probe pass at construction:

- a (B, C, H, W) tensor at the LR size, or at the LR size padded up to the architecture's size multiple
  (spandrel's ``size_requirements``; SwinIR and HAT pad to their window) — cropped back to the LR size;
- a (B, H·W, C) token sequence of the architectures whose tokens are the LR grid in raster order (their
  ``PatchUnEmbed`` reshapes them so): :data:`RASTER_TOKEN_ARCHITECTURES`; any other token output is not
  a tap (affinity needs maps at LR resolution).

Modules that run more than once per pass are not taps. A tap's map reaches :class:`fakd.distill.FeatureTaps`
through a view module (``get_submodule`` of the tap's name returns it), so hooks see the reshaped map.

Default taps follow fakd's RCAN rule at the same relative depths: of the longest run of repeated blocks
(``layers.0`` … ``layers.{n-1}``, ``model.1.sub.0`` …), the 1-based blocks round(0.3·n) and round(0.7·n),
and the last LR-resolution tap of the blocks' width after them (the body's output).
"""

from __future__ import annotations

import re
import warnings

import torch
from torch import Tensor, nn

from fakd.errors import FakdError

SPANDREL_ARCH = "spandrel"
RASTER_TOKEN_ARCHITECTURES = frozenset({"SwinIR", "HAT", "Swin2SR", "DRCT", "ATD"})
PROBE_SIZE = (48, 96)  # the probe's LR size: a multiple of the usual windows (8, 12, 16, 24, 48)
MAX_PAD_MULTIPLE = 64


class NotRecognised(FakdError):
    """spandrel knows no architecture with these keys."""


class TapView(nn.Module):
    """Identity on a tap's reshaped map: forward hooks on it see what the tap means."""

    def forward(self, features: Tensor) -> Tensor:
        return features


class SpandrelSR(nn.Module):
    """A spandrel ``ImageModelDescriptor``'s network behind fakd's model interface."""

    def __init__(self, descriptor, *, state_dict: dict):
        super().__init__()
        _check_sr(descriptor)
        self.net = descriptor.model.eval()
        self.arch_id = str(descriptor.architecture.id)
        self.scale = int(descriptor.scale)
        self.multiple = max(1, int(getattr(descriptor.size_requirements, "multiple_of", 1) or 1))
        self.config = {"arch": SPANDREL_ARCH, "scale": self.scale, "spandrel_arch": self.arch_id}
        self.checkpoint_state = state_dict  # what fakd convert writes, unchanged
        self._input_size: tuple[int, int] = (0, 0)
        self.tap_shapes, self._kinds, self.untapped_tokens = self._probe()
        self.views = nn.ModuleDict({_key(name): TapView() for name in self.tap_shapes})
        for name in self.tap_shapes:
            self.net.get_submodule(name).register_forward_hook(self._forward_view(name))
        self.default_taps = _default_taps(list(self.tap_shapes), self.tap_shapes)

    def forward(self, x: Tensor) -> Tensor:
        self._input_size = (int(x.shape[-2]), int(x.shape[-1]))
        return self.net(x.clone())  # spandrel's RCAN, among others, scales its input in place

    def tap_names(self) -> list[str]:
        return list(self.tap_shapes)

    def get_submodule(self, target: str) -> nn.Module:
        """A tap's name resolves to its view (the map at LR resolution); any other path as usual."""
        if target in getattr(self, "tap_shapes", {}):
            return self.views[_key(target)]
        return super().get_submodule(target)

    def _forward_view(self, name: str):
        def hook(module, args, output):
            view = self.views[_key(name)]
            if view._forward_hooks:  # only while something taps it (FeatureTaps): no work otherwise
                view(self._as_map(output, kind=self._kinds[name]))
        return hook

    def _as_map(self, output: Tensor, *, kind: str) -> Tensor:
        height, width = self._input_size
        if kind == "tokens":
            padded_h, padded_w = _token_grid(output.shape[1], height=height, width=width)
            output = output.transpose(1, 2).reshape(output.shape[0], output.shape[2], padded_h, padded_w)
        return output[..., :height, :width]

    def _probe(self) -> tuple[dict[str, tuple[int, ...]], dict[str, str], list[str]]:
        """(tap → shape of its map at the probe size, tap → 'map' | 'tokens', modules giving LR token sequences
        this architecture does not say how to reshape), in forward order."""
        height, width = (_padded(side, self.multiple) for side in PROBE_SIZE)
        padded = (height, width)
        seen: dict[str, list[tuple[int, ...]]] = {}

        def recorder(name):
            def record(module, args, output):
                seen.setdefault(name, []).append(tuple(output.shape) if isinstance(output, Tensor) else ())
            return record

        handles = [module.register_forward_hook(recorder(name)) for name, module in self.net.named_modules() if name]
        try:
            with torch.no_grad():
                self.net(torch.rand(1, 3, height, width, device=_device(self.net)))
        finally:
            for handle in handles:
                handle.remove()
        shapes, kinds, untapped = {}, {}, []
        for name, outputs in seen.items():
            if len(outputs) != 1 or not outputs[0] or outputs[0][0] != 1:
                continue
            shape = outputs[0]
            if len(shape) == 4 and shape[2:] in ((height, width), padded):
                shapes[name], kinds[name] = (shape[1], height, width), "map"
            elif len(shape) == 3 and shape[1] == padded[0] * padded[1]:
                if self.arch_id in RASTER_TOKEN_ARCHITECTURES:
                    shapes[name], kinds[name] = (shape[2], height, width), "tokens"
                else:
                    untapped.append(name)
        return shapes, kinds, untapped


def spandrel_model(state_dict: dict, *, where: str) -> SpandrelSR:
    """The spandrel network of ``state_dict`` behind :class:`SpandrelSR`; an architecture spandrel does not
    know → FakdError."""
    from fakd.models.spandrel_import import spandrel_registry

    spandrel, registry, _ = spandrel_registry()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # architectures' notices to their developers (meshgrid, ...)
            descriptor = registry.load(state_dict)
            return SpandrelSR(descriptor, state_dict=state_dict)
    except spandrel.UnsupportedModelError:
        raise NotRecognised(f"{where}: spandrel does not recognise this network either") from None
    except Exception as error:  # an architecture's own loader failing on an odd state dict
        if isinstance(error, FakdError):
            raise
        raise FakdError(f"{where}: spandrel could not load it ({str(error).splitlines()[0][:160]})") from None


def _check_sr(descriptor) -> None:
    arch = str(descriptor.architecture.id)
    if getattr(descriptor, "purpose", None) != "SR" or int(getattr(descriptor, "scale", 1)) < 2:
        raise FakdError(f"spandrel recognises a {arch} network for {getattr(descriptor, 'purpose', '?')}, not "
                        f"super-resolution")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise FakdError(f"the {arch} network takes {descriptor.input_channels} and gives "
                        f"{descriptor.output_channels} channels; fakd's models are RGB")


def _default_taps(names: list[str], shapes: dict) -> list[str]:
    """The RCAN rule on the longest run of numbered sibling blocks (see the module's docstring)."""
    runs: dict[str, list[str]] = {}
    for name in names:
        match = re.fullmatch(r"(.*?)(\d+)", name)
        if match and (not match.group(1) or match.group(1).endswith((".", "_"))):
            runs.setdefault(match.group(1), []).append(name)
    runs = {prefix: blocks for prefix, blocks in runs.items()
            if len(blocks) >= 2 and _numbers(blocks, prefix) in (list(range(len(blocks))), list(range(1, len(blocks) + 1)))}
    if not runs:
        return []
    blocks = max(runs.values(), key=len)
    count = len(blocks)
    chosen = [blocks[index - 1] for index in sorted({max(1, int(fraction * count + 0.5)) for fraction in (0.3, 0.7)})]
    width = shapes[blocks[-1]][0]
    after = [name for name in names[names.index(blocks[-1]) + 1:]
             if shapes[name][0] == width and not name.startswith(blocks[-1] + ".")]
    return chosen + ([after[-1]] if after else [blocks[-1]] if blocks[-1] not in chosen else [])


def _numbers(blocks: list[str], prefix: str) -> list[int]:
    return [int(block[len(prefix):]) for block in blocks]


def _token_grid(tokens: int, *, height: int, width: int) -> tuple[int, int]:
    """The (padded) LR grid of a raster token sequence: the input size padded up to the smallest multiple
    whose grid has ``tokens`` cells."""
    for multiple in range(1, MAX_PAD_MULTIPLE + 1):
        grid = (_padded(height, multiple), _padded(width, multiple))
        if grid[0] * grid[1] == tokens:
            return grid
    raise RuntimeError(f"{tokens} tokens are no padded grid of the {height}x{width} input")


def _padded(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def _key(name: str) -> str:
    return name.replace(".", "__")


def _device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")
