"""``fakd taps``: every tap point of a model (where feature distillation and the explorer can read its
features) with the shape of its map at an LR size."""

import argparse

import torch

from fakd.commands.common import positive_int
from fakd.distill import FeatureTaps
from fakd.errors import FakdError
from fakd.zoo.named_models import model_from_spec

MAX_SIZE = 1024


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "taps",
        help="list a model's tap points with the shape of each feature map",
        description="List every tap of MODEL in forward order with its map's shape (channels x height x width) "
        "for an LR input of --size H W, the default taps marked with *. fakd's RCAN/EDSR: head, body.0 ... "
        "body.{n-1}, body_tail, long_skip. Networks loaded through spandrel: every submodule whose output is "
        "a map at the LR resolution, or a token sequence the architecture lays out as the LR grid (SwinIR, "
        "HAT, ...), reshaped to one; give a tap to fakd distill --teacher-taps.",
    )
    parser.add_argument("model", metavar="MODEL",
                        help="a preset (rcan-teacher, ...), a model file (fakd checkpoint, official RCAN/EDSR, "
                        "BasicSR, .safetensors, any network spandrel loads) or fakd:<name>")
    parser.add_argument("--size", type=positive_int, nargs=2, default=(48, 48), metavar=("H", "W"),
                        help="LR input size (default 48 48)")
    parser.add_argument("--scale", type=positive_int, default=4, help="scale of a preset (default 4; a file's own)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    height, width = args.size
    if max(height, width) > MAX_SIZE:
        raise FakdError(f"--size must be ≤ {MAX_SIZE}, got {height} {width}")
    name, model = model_from_spec(args.model, scale=args.scale, any_scale=True)
    names = list(model.tap_names())
    with torch.no_grad(), FeatureTaps(model, names) as taps:
        output = model(torch.rand(1, 3, height, width))
        shapes = {tap: tuple(taps[tap].shape[1:]) for tap in names}
    print(f"{name}: x{model.scale}, {len(names)} taps for a {height}x{width} LR input (output "
          f"{tuple(output.shape[2:])[0]}x{tuple(output.shape[2:])[1]}); * = default taps")
    width_names = max(len(tap) for tap in names) if names else 4
    for tap in names:
        shape = "x".join(str(size) for size in shapes[tap])
        at_lr = "" if shapes[tap][-2:] == (height, width) else "  (not at LR resolution: no affinity)"
        print(f"{'*' if tap in model.default_taps else ' '} {tap:{width_names}s}  {shape}{at_lr}")
    untapped = getattr(model, "untapped_tokens", [])
    if untapped:
        print(f"not taps: {len(untapped)} module(s) give token sequences that {model.config.get('spandrel_arch')} "
              f"does not lay out as the LR grid (e.g. {untapped[0]})")
    return 0
