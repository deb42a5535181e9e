"""``fakd degrade``: MATLAB-bicubic LR copies of a folder of HR images."""

import argparse
from pathlib import Path

from tqdm.auto import tqdm

from fakd.commands.common import positive_int
from fakd.data.benchmark import bicubic_lr, check_scale, hr_to_tensor
from fakd.data.image_io import list_images, read_image, tensor_to_image, write_image
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
    parser.add_argument("--output", type=Path, required=True,
                        help="folder for the LR PNGs (created; must not be the input folder)")
    parser.set_defaults(handler=run)


def _check_output(paths: list[Path], *, input_dir: Path, output_dir: Path) -> None:
    """Refuse an output that would overwrite the inputs or write two images to one file."""
    if output_dir.exists() and not output_dir.is_dir():
        raise FakdError(f"--output {output_dir} exists and is not a folder")
    if output_dir.resolve() == input_dir.resolve():
        raise FakdError(f"--output {output_dir} is the input folder: the LR images would replace the HR ones")
    seen = {}
    for path in paths:
        if path.stem in seen:
            raise FakdError(f"{seen[path.stem].name} and {path.name} would both be written as {path.stem}.png")
        seen[path.stem] = path


def run(args: argparse.Namespace) -> int:
    scale = check_scale(args.scale)
    paths = list_images(args.input)
    _check_output(paths, input_dir=args.input, output_dir=args.output)
    images = []
    for path in tqdm(paths, desc=f"degrading x{scale}", disable=None):  # no bar when stderr is not a terminal
        # every file is read and shrunk before anything is written, so a bad file leaves no partial output;
        # only the LR images (1/s² of the HR bytes) are kept meanwhile
        lr = bicubic_lr(hr_to_tensor(read_image(path), scale=scale, name=str(path)), scale=scale)
        images.append((path, lr))
    args.output.mkdir(parents=True, exist_ok=True)
    for path, lr in images:
        write_image(args.output / f"{path.stem}.png", tensor_to_image(lr))
    print(f"wrote {len(images)} LR images (x{scale}) to {args.output}")
    return 0
