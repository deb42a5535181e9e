"""``fakd upscale``: super-resolve your own images with a trained checkpoint, tile by tile."""

import argparse
from pathlib import Path

import torch

from fakd.commands.common import add_device_argument, add_threads_argument, positive_int
from fakd.data.image_io import image_to_tensor, list_images, read_image, tensor_to_image, write_image
from fakd.device import resolve_device
from fakd.engine.checkpoint import load_model_from_checkpoint
from fakd.engine.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, upscale_tiled
from fakd.errors import FakdError
from fakd.threads import use_threads


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "upscale",
        help="super-resolve images with a checkpoint (large images in overlapping tiles)",
        description="Super-resolve image files (or every image in a folder) with a trained checkpoint. "
        "Large images run in tiles with overlapping context so memory stays bounded; outputs are PNG "
        "files named like their inputs.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="a fakd checkpoint (best.pt) or fakd:<name> for a shipped model")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="folder for the results")
    parser.add_argument("--tile", type=positive_int, default=DEFAULT_TILE,
                        help=f"LR tile side in pixels (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                        help=f"LR context pixels around each tile (default {DEFAULT_OVERLAP})")
    add_device_argument(parser)
    add_threads_argument(parser)
    parser.set_defaults(handler=run)


def input_files(inputs: list[str]) -> list[Path]:
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise FakdError(f"folder {item!r} holds no PNG/JPEG/BMP images")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FakdError(f"input {item!r} not found")
    return files


def run(args: argparse.Namespace) -> int:
    use_threads(args.threads, command="fakd upscale")
    device = resolve_device(args.device)
    model = load_model_from_checkpoint(args.checkpoint, device)
    scale = model.scale
    files = input_files(args.inputs)
    args.output.mkdir(parents=True, exist_ok=True)
    for path in files:
        lr = image_to_tensor(read_image(path)).unsqueeze(0).to(device)
        with torch.no_grad():
            sr = upscale_tiled(model, lr, scale=scale, tile=args.tile, overlap=args.overlap)
        target = args.output / f"{path.stem}.png"
        write_image(target, tensor_to_image(sr[0].cpu()))
        print(f"{path} -> {target} ({lr.shape[-1]}x{lr.shape[-2]} -> {sr.shape[-1]}x{sr.shape[-2]})")
    return 0
