"""``fakd evaluate``: PSNR/SSIM of models on benchmark sets, printed as the papers' table."""

import argparse
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from fakd.analysis.tables import paper_table, to_text
from fakd.atomic import write_json_atomically
from fakd.commands.common import (add_data_root_argument, add_device_argument, add_threads_argument, positive_int,
                                  shows_progress)
from fakd.data.benchmark import open_benchmark_set
from fakd.data.imresize import imresize
from fakd.device import resolve_device
from fakd.errors import FakdError
from fakd.metrics import SSIM_WINDOW, evaluate_model, quantize_to_uint8
from fakd.paths import check_output_file
from fakd.threads import use_threads
from fakd.zoo.named_models import models_from_checkpoints

BUILTIN_MODELS = ("bicubic",)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="PSNR/SSIM (Y, border crop = scale) of models on benchmark sets",
        description="Evaluate models on benchmark sets with the SR papers' protocol (PSNR/SSIM on BT.601 Y, "
        "border crop = scale, SR rounded to 8 bits) and print the paper-format table.",
    )
    parser.add_argument("--model", action="append", default=[], choices=BUILTIN_MODELS,
                        help="a built-in model: bicubic (MATLAB bicubic upscaling); repeatable")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="CKPT",
                        help="a trained fakd checkpoint file, fakd:<name> for a shipped model (fakd export --list), "
                        "or official RCAN/EDSR weights, a BasicSR checkpoint or a .safetensors "
                        "file; repeatable")
    parser.add_argument("--dataset", action="append", required=True, metavar="SET_OR_PATH",
                        help="a set name under the data root (Set5, Set14, B100), an embedded set (skimage-test) or a folder; repeatable")
    parser.add_argument("--scale", type=positive_int, required=True, help="upscaling factor")
    parser.add_argument("--lr-source", choices=["bicubic", "premade"], default="bicubic",
                        help="make LR with fakd's MATLAB bicubic (default) or read <Set>/LR_bicubic/X<s>/")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the rows as JSON")
    add_data_root_argument(parser)
    add_device_argument(parser)
    add_threads_argument(parser)
    parser.set_defaults(handler=run)


def bicubic_upscaler(scale: int):
    """The bicubic baseline as a model: MATLAB ``imresize(LR, s, 'bicubic')`` on the 8-bit LR image.

    Like MATLAB on uint8 input, it rounds after each 1-D pass; this is what reproduces the published
    bicubic rows (the float path gives up to 0.005 dB more on Set5).
    """

    def upscale(lr):
        return imresize(quantize_to_uint8(lr), scale=scale).float() / 255.0

    return upscale


def named_models(args: argparse.Namespace, *, device) -> list[tuple[str, object]]:
    """(name, model) pairs asked for on the command line."""
    models = [(name, bicubic_upscaler(args.scale)) for name in args.model]
    models += models_from_checkpoints(args.checkpoint, scale=args.scale, device=device)
    if not models:
        raise FakdError("name at least one model to evaluate (--model bicubic or --checkpoint CKPT)")
    return models


def run(args: argparse.Namespace) -> int:
    use_threads(args.threads, command="fakd evaluate")
    if args.json is not None:
        check_output_file(args.json, label="--json")  # before the evaluation, not after it
    device = resolve_device(args.device)
    models = named_models(args, device=device)  # model mistakes are reported before any data set is read
    datasets = [open_benchmark_set(name, scale=args.scale, data_root=args.data_root, lr_source=args.lr_source)
                for name in args.dataset]
    for dataset in datasets:
        check_image_sizes(dataset, scale=args.scale)
    rows = []
    with tqdm(total=len(models) * sum(len(dataset) for dataset in datasets), unit="image",
              disable=not shows_progress(), dynamic_ncols=True) as bar:
        for model_name, model in models:
            for dataset in datasets:
                bar.set_description(f"{model_name} on {dataset.name}")
                per_image = evaluate_model(counting(model, bar), dataset, scale=args.scale, device=device,
                                           progress=False)
                rows.append({"model": model_name, "dataset": dataset.name, "scale": args.scale,
                             "psnr": float(per_image["psnr"].mean()), "ssim": float(per_image["ssim"].mean()),
                             "n_images": len(per_image)})
    print(to_text(paper_table(pd.DataFrame(rows))))
    if args.json is not None:
        write_json_atomically(args.json, {"rows": rows})
    return 0


def counting(model, bar):
    """``model`` as a plain function that advances ``bar`` once per image."""

    def upscale(lr):
        sr = model(lr)
        bar.update(1)
        return sr

    return upscale


def check_image_sizes(dataset, *, scale: int) -> None:
    """Every HR image leaves an 11x11 SSIM window after the border crop of ``scale`` (checked before any
    model runs; the message names the image)."""
    for pair in dataset:
        height, width = pair.hr.shape[-2:]
        if min(height, width) - 2 * scale < SSIM_WINDOW:
            raise FakdError(f"image {pair.name!r} of {dataset.name} is {width}x{height}: too small to score at "
                            f"x{scale} (needs {SSIM_WINDOW + 2 * scale} px a side: the {SSIM_WINDOW}x{SSIM_WINDOW} "
                            f"SSIM window after a border crop of {scale})")
