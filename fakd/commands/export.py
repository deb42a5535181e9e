"""``fakd export``: ship a finished run's best model as ``fakd:<name>`` (``fakd/pretrained/``), or write it in
the official RCAN/EDSR layout, as .safetensors or as ONNX (``--format``, ``fakd.train.weights_export``)."""

import argparse
from pathlib import Path

from fakd.commands.common import add_data_root_argument, add_device_argument
from fakd.errors import FakdError
from fakd.paths import check_output_file, check_output_folder
from fakd.train.export import export_pretrained, run_best_checkpoint
from fakd.train.weights_export import FORMATS, export_weights
from fakd.zoo.checkpoint import load_model_from_checkpoint
from fakd.zoo.pretrained import MANIFEST_FILE, list_pretrained, pretrained_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="ship a finished run's best model as fakd:<name> (or --list the shipped models)",
        description="--format fakd (the default): write a run's checkpoints/best.pt as a weights-only checkpoint "
        "into the pretrained folder (fakd/pretrained, or $FAKD_PRETRAINED_DIR), measure its Set5 PSNR/SSIM on "
        "the data root, and add or replace its entry in manifest.json; afterwards every command that takes a "
        "checkpoint accepts fakd:<name>. --format official | safetensors | onnx --out FILE: write the model "
        "of a run folder or of any model file fakd loads in the official RCAN/EDSR layout (.pt, 0-255 "
        "pixels), the same as .safetensors, or as ONNX ([0, 1] RGB in and out, dynamic size); the file is "
        "read back and run beside the model first (ONNX with onnxruntime), the max abs difference printed.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                        help="a finished run folder (fakd train/distill --out, or a notebook run_dir); with "
                        "--format official/safetensors/onnx also a model file (checkpoint, official weights)")
    parser.add_argument("--format", choices=("fakd", *FORMATS), default="fakd",
                        help="fakd: ship as fakd:<name> (default); official, safetensors, onnx: write --out FILE")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="the file to write for --format official (.pt), safetensors or onnx")
    parser.add_argument("--name", default=None, help="the shipped name, e.g. rcan-cpu-teacher-x4")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="pretrained folder to write (default: $FAKD_PRETRAINED_DIR, else fakd/pretrained)")
    parser.add_argument("--list", action="store_true", help="list the shipped models and exit")
    add_data_root_argument(parser)
    add_device_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.out_dir is not None and args.out_dir.exists() and not args.out_dir.is_dir():
        raise FakdError(f"--out-dir {str(args.out_dir)!r} exists and is not a folder")
    if args.list:
        print_listing(args.out_dir)
        return 0
    if args.format != "fakd":
        return export_file(args)
    if args.out is not None:
        raise FakdError("--out is for --format official, safetensors or onnx; --format fakd writes --out-dir")
    if args.run_dir is None or not args.name:
        raise FakdError("give RUN_DIR and --name NAME (or --list)")
    check_output_folder(pretrained_dir(args.out_dir), label="--out-dir")
    entry = export_pretrained(args.run_dir, name=args.name, data_root=args.data_root, out_dir=args.out_dir,
                              device=args.device)
    folder = pretrained_dir(args.out_dir)
    recorded = entry["recorded_set5"]
    score = (f"Set5 {recorded['psnr']:.3f} dB / {recorded['ssim']:.4f}" if recorded
             else entry["recorded_set5_note"])
    print(f"fakd:{entry['name']} -> {folder / entry['file']} ({entry['size_bytes'] / 1e6:.1f} MB, "
          f"{entry['method']}, seed {entry['seed']}, {entry['iterations']} iterations; {score})")
    print(f"manifest: {folder / MANIFEST_FILE}")
    return 0


def print_listing(directory) -> None:
    entries = list_pretrained(directory)
    if not entries:
        print(f"no models are shipped yet ({pretrained_dir(directory) / MANIFEST_FILE} is empty)")
        return
    width = max(len(str(entry.get("name"))) for entry in entries) + 5
    print(f"{'spec':{width}s}  {'role':7s}  {'method':10s}  {'seed':>4s}  {'scale':>5s}  {'Set5 PSNR':>9s}  {'MB':>5s}")
    for entry in entries:
        recorded = entry.get("recorded_set5") or {}
        psnr = f"{recorded['psnr']:.3f}" if "psnr" in recorded else "-"
        print(f"{'fakd:' + str(entry.get('name')):{width}s}  {str(entry.get('role')):7s}  "
              f"{str(entry.get('method')):10s}  {entry.get('seed')!s:>4s}  {'x' + str(entry.get('scale')):>5s}  "
              f"{psnr:>9s}  {entry.get('size_bytes', 0) / 1e6:5.1f}")


def export_file(args: argparse.Namespace) -> int:
    """``--format official | safetensors | onnx``: the model of RUN_DIR (or a model file) written to --out."""
    if args.run_dir is None or args.out is None:
        raise FakdError(f"--format {args.format} needs RUN_DIR (or a model file) and --out FILE")
    if args.name:
        raise FakdError(f"--name is for --format fakd; --format {args.format} writes --out FILE")
    check_output_file(args.out, label="--out")
    source = run_best_checkpoint(args.run_dir) if args.run_dir.is_dir() else args.run_dir
    model = load_model_from_checkpoint(source, "cpu")
    result = export_weights(model, fmt=args.format, out=args.out)
    print(f"{result['out']}: {model.config['arch']} x{model.scale} as {args.format} from {source}; read back "
          f"with {result['checked_with']}: max abs difference {result['max_abs_difference']:.2e} ([0, 1] pixels)")
    return 0
