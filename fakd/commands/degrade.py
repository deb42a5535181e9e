"""``fakd degrade``: MATLAB-bicubic LR copies of a folder of HR images."""

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from fakd.atomic import StagedFiles
from fakd.commands.common import positive_int, shows_progress
from fakd.checks import check_scale
from fakd.data.image_io import encode_png, list_images, read_image, tensor_to_image
from fakd.data.imresize import bicubic_downscale_banded, modcrop
from fakd.errors import FakdError
from fakd.paths import check_input_folder, check_output_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "degrade",
        help="write MATLAB-bicubic LR images of a folder of HR images",
        description="Crop every HR image in INPUT from the top-left to a multiple of the scale, shrink it "
        "with MATLAB-compatible bicubic imresize(., 1/S) and write it to OUTPUT as PNG with the same stem. "
        "Every image is decoded before anything is written; the LR images appear together at the end or not "
        "at all; an existing file is never replaced without --overwrite.",
    )
    parser.add_argument("--scale", type=positive_int, required=True, help="downscaling factor S (2, 3, 4, ...)")
    parser.add_argument("--input", type=Path, required=True, help="folder of HR images (png/jpg/bmp)")
    parser.add_argument("--output", type=Path, required=True,
                        help="folder for the LR PNGs (created; must not be the input folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace LR images of earlier runs in OUTPUT")
    parser.set_defaults(handler=run)


def _check_output(paths: list[Path], *, input_dir: Path, output_dir: Path, overwrite: bool) -> list[Path]:
    """The output files; refuses an output that would overwrite the inputs, replace an existing file
    (without ``overwrite``) or write two images to one file."""
    check_output_folder(output_dir)
    if output_dir.resolve() == input_dir.resolve():
        raise FakdError(f"--output {output_dir} is the input folder: the LR images would replace the HR ones")
    seen, targets = {}, []
    for path in paths:
        if path.stem in seen:
            raise FakdError(f"{seen[path.stem].name} and {path.name} would both be written as {path.stem}.png")
        seen[path.stem] = path
        target = output_dir / f"{path.stem}.png"
        if target.exists() and not overwrite:
            raise FakdError(f"{target} already exists; pass --overwrite to replace it, or choose another --output")
        targets.append(target)
    return targets


def _read_hr(path: Path, *, scale: int) -> np.ndarray:
    """The HR image of one file; one line naming it when it is unreadable or smaller than the scale."""
    hr = read_image(path)
    height, width = hr.shape[:2]
    if height < scale or width < scale:
        raise FakdError(f"image {str(path)!r} ({width}x{height}) is smaller than the scale x{scale}")
    return hr


def run(args: argparse.Namespace) -> int:
    scale = check_scale(args.scale)
    paths = list_images(check_input_folder(args.input, label="--input"))
    targets = _check_output(paths, input_dir=args.input, output_dir=args.output, overwrite=args.overwrite)
    for path in paths:  # every file is decoded and checked before anything is computed or written
        _read_hr(path, scale=scale)
    with StagedFiles() as staged:  # the LR images appear together at the end, or none does
        staged.make_folder(args.output)
        for path, target in tqdm(list(zip(paths, targets)), desc=f"degrading x{scale}",
                                 disable=not shows_progress()):
            lr = bicubic_downscale_banded(modcrop(_read_hr(path, scale=scale), scale), scale=scale)
            staged.write_bytes(target, encode_png(tensor_to_image(lr)))
    print(f"wrote {len(targets)} LR images (x{scale}) to {args.output}")
    return 0
