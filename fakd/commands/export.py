"""``fakd export``: ship a finished run's best model as ``fakd:<name>`` (``fakd/pretrained/``)."""

import argparse
from pathlib import Path

from fakd.commands.common import add_data_root_argument, add_device_argument
from fakd.errors import FakdError
from fakd.paths import check_output_folder
from fakd.train.export import export_pretrained
from fakd.zoo.pretrained import MANIFEST_FILE, list_pretrained, pretrained_dir


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="ship a finished run's best model as fakd:<name> (or --list the shipped models)",
        description="Write a run's checkpoints/best.pt as a weights-only checkpoint into the pretrained "
        "folder (fakd/pretrained, or $FAKD_PRETRAINED_DIR), measure its Set5 PSNR/SSIM on the data root, "
        "and add or replace its entry in manifest.json. Afterwards every command that takes a checkpoint "
        "accepts fakd:<name>.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, metavar="RUN_DIR",
                        help="a finished run folder (fakd train/distill --out, or a notebook run_dir)")
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
