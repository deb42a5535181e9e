"""``fakd convert``: official RCAN / EDSR weights, a BasicSR checkpoint or a .safetensors file → a fakd
checkpoint that records the source file's sha256."""

import argparse
from pathlib import Path

from fakd.commands.common import positive_int, positive_number
from fakd.errors import FakdError
from fakd.paths import check_output_file
from fakd.zoo.checkpoint import read_model_payload, save_checkpoint
from fakd.zoo.pretrained import resolve_checkpoint_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="write official RCAN/EDSR, BasicSR or .safetensors weights as a fakd checkpoint",
        description="Recognise the network in FILE (official RCAN or EDSR-PyTorch state dict, BasicSR checkpoint, "
        ".safetensors; sizes and scale from the tensors), convert its weights to fakd's RCAN/EDSR on [0, 1] "
        "pixels and write a fakd checkpoint recording FILE's sha256. Every command also takes FILE directly; "
        "converting once skips the recognition and fixes EDSR's res_scale.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the weights file (.pt, .pth, .safetensors)")
    parser.add_argument("--out", type=Path, required=True, metavar="CKPT", help="the fakd checkpoint to write")
    parser.add_argument("--res-scale", type=positive_number, default=None, metavar="X",
                        help="EDSR's residual scaling, which the weights do not hold (default: 0.1 for 32 blocks "
                        "x 256 features, as the paper's EDSR; 1 for every other size)")
    parser.add_argument("--scale", type=positive_int, default=None,
                        help="refuse FILE unless it is a model of this scale")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.out, label="--out")
    source = resolve_checkpoint_path(args.file)
    if args.out.exists() and args.out.resolve() == source.resolve():
        raise FakdError(f"--out {str(args.out)!r} is FILE itself; give another file name")
    payload = read_model_payload(source, res_scale=args.res_scale, scale=args.scale)
    if "source" not in payload:
        raise FakdError(f"{str(source)!r} is already a fakd checkpoint; nothing to convert")
    config = payload["model_config"]
    save_checkpoint({key: payload[key] for key in ("model_config", "model_state", "model_name", "role", "source")}
                    | {"iteration": 0}, args.out)
    print(f"{args.out}: fakd {config['arch']} x{config['scale']} from {source.name} "
          f"(sha256 {payload['source']['sha256']})")
    return 0
