"""``fakd upscale``: super-resolve your own images with a trained checkpoint, tile by tile."""

import argparse
from pathlib import Path

import torch
from tqdm.auto import tqdm

from fakd.atomic import StagedFiles
from fakd.commands.common import add_device_argument, add_threads_argument, non_negative_int, positive_int, shows_progress
from fakd.data.image_io import list_images, read_image, write_png_bands
from fakd.device import resolve_device
from fakd.errors import FakdError
from fakd.paths import check_input_folder, check_output_folder
from fakd.threads import use_threads
from fakd.zoo.checkpoint import load_model_from_checkpoint
from fakd.zoo.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, count_tiles, upscale_bands


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "upscale",
        help="super-resolve images with a checkpoint (large images in overlapping tiles)",
        description="Super-resolve image files (or every image in a folder) with a trained checkpoint. "
        "Large images run in tiles with overlapping context and the results are written band by band, so "
        "memory stays bounded (about 10 MB per LR megapixel); outputs are PNG files named like their "
        "inputs. Every input is checked before any work, and the results appear together at the end or "
        "not at all; an existing file is never replaced without --overwrite, an input never.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="a fakd checkpoint (best.pt), fakd:<name> "
                        "for a shipped model, or official RCAN/EDSR weights, a BasicSR checkpoint or a .safetensors "
                        "file")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--output", required=True, type=Path, metavar="DIR",
                        help="folder for the results (created; not an input folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace results of earlier runs in DIR")
    parser.add_argument("--tile", type=positive_int, default=DEFAULT_TILE,
                        help=f"LR tile side in pixels (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=non_negative_int, default=DEFAULT_OVERLAP,
                        help=f"LR context pixels around each tile (default {DEFAULT_OVERLAP})")
    add_device_argument(parser)
    add_threads_argument(parser)
    parser.set_defaults(handler=run)


def input_files(inputs: list[str]) -> list[Path]:
    """The image files named, folders expanded to the images directly inside them."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files += list_images(check_input_folder(path, label="input folder"))
        elif path.is_file():
            files.append(path)
        else:
            raise FakdError(f"input {item!r} not found")
    return files


def output_files(files: list[Path], *, inputs: list[str], output: Path, overwrite: bool) -> list[Path]:
    """``OUTPUT/<stem>.png`` for each input; refuses anything that would replace a user's file."""
    sources = {path.resolve() for path in files}
    folders = {Path(item).resolve() for item in inputs if Path(item).is_dir()} | {path.parent for path in sources}
    if output.resolve() in folders:
        raise FakdError(f"--output {str(output)!r} is an input folder: the results would sit among (and "
                        f"replace) the originals; choose another folder")
    targets, seen = [], {}
    for path in files:
        target = output / f"{path.stem}.png"
        if target in seen:
            raise FakdError(f"{seen[target]} and {path} would both be written as {target}")
        if target.resolve() in sources:
            raise FakdError(f"{target} would replace the input {target}; choose another --output")
        if target.exists() and not overwrite:
            raise FakdError(f"{target} already exists; pass --overwrite to replace it, or choose another --output")
        seen[target] = path
        targets.append(target)
    return targets


def check_inputs(files: list[Path], *, tile: int, overlap: int) -> list[int]:
    """Decode every input once before anything is computed; returns the tile count of each."""
    counts = []
    for path in files:
        height, width = read_image(path).shape[:2]  # a bad file is one line naming it
        counts.append(count_tiles(height, width, tile=tile, overlap=overlap))
    return counts


def run(args: argparse.Namespace) -> int:
    use_threads(args.threads, command="fakd upscale")
    check_output_folder(args.output)  # before the model is loaded
    device = resolve_device(args.device)
    model = load_model_from_checkpoint(args.checkpoint, device)
    scale = model.scale
    files = input_files(args.inputs)
    targets = output_files(files, inputs=args.inputs, output=args.output, overwrite=args.overwrite)
    counts = check_inputs(files, tile=args.tile, overlap=args.overlap)
    done = []
    with tqdm(total=sum(counts), unit="tile", disable=not shows_progress(), dynamic_ncols=True) as bar, \
            StagedFiles() as staged:  # every result appears at the end, or none does
        staged.make_folder(args.output)
        for path, target in zip(files, targets):
            bar.set_description(f"upscaling {path.name}")
            lr = torch.from_numpy(read_image(path)).permute(2, 0, 1)
            height, width = lr.shape[1] * scale, lr.shape[2] * scale
            with staged.open(target) as stream:
                write_png_bands(stream, width=width, height=height,
                                bands=upscale_bands(model, lr, scale=scale, tile=args.tile, overlap=args.overlap,
                                                    device=device, on_tile=bar.update))
            done.append(f"{path} -> {target} ({lr.shape[2]}x{lr.shape[1]} -> {width}x{height})")
            del lr
    print("\n".join(done))
    return 0
