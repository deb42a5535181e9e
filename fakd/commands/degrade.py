"""``fakd degrade``: MATLAB-bicubic LR copies of a folder of HR images."""

import argparse
from pathlib import Path

import torch
from tqdm.auto import tqdm

from fakd.commands.common import positive_int
from fakd.data.image_io import list_images, read_image, write_image
from fakd.data.imresize import imresize, modcrop
from fakd.errors import FakdError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "degrade",
        help="write MATLAB-bicubic LR images of a folder of HR images",
        description="Crop every HR image in INPUT from the top-left to a multiple of the scale, shrink it "
        "with MATLAB-compatible bicubic imresize(., 1/S) and write it to OUTPUT as PNG with the same stem.",
    )
    parser.add_argument("--scale", type=positive_int, required=True, help="downscaling factor S (2, 3, 4, ...)")
    parser.add_argument("--input", type=Path, required=True, help="folder of HR images (png/jpg/bmp)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the LR PNGs (created)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.scale < 2:
        raise FakdError(f"--scale must be at least 2, got {args.scale}")
    paths = list_images(args.input)
    images = []
    for path in paths:  # read and check everything first, so a bad file leaves no partial output
        hr = modcrop(read_image(path), args.scale)
        if min(hr.shape[:2]) < args.scale:
            raise FakdError(f"{path}: image {hr.shape[1]}x{hr.shape[0]} is smaller than the scale {args.scale}")
        images.append((path, hr))
    if args.output.exists() and not args.output.is_dir():
        raise FakdError(f"--output {args.output} exists and is not a folder")
    args.output.mkdir(parents=True, exist_ok=True)
    for path, hr in tqdm(images, desc=f"degrading x{args.scale}"):
        lr = imresize(torch.from_numpy(hr).permute(2, 0, 1), scale=1 / args.scale)
        write_image(args.output / f"{path.stem}.png", lr.permute(1, 2, 0).numpy())
    print(f"wrote {len(images)} LR images (x{args.scale}) to {args.output}")
    return 0
