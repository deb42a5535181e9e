"""``fakd train``: train a teacher or a student (without distillation) into a run directory."""

import argparse

from fakd.commands.common import add_data_root_argument, add_device_argument, add_threads_argument, shows_progress
from fakd.data.roots import resolve_data_root
from fakd.threads import use_threads
from fakd.train.config import PROFILES, load_run_config
from fakd.train.distributed import ranks_from_environment
from fakd.train.trainer import train_run


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments every training command shares: config, overrides, output folder, resume."""
    parser.add_argument("--config", default="cpu", metavar="FILE_OR_PROFILE",
                        help=f"a profile ({', '.join(PROFILES)}; default cpu) or a YAML/JSON config file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one config key, dotted (student.iterations=500, seed=1); repeatable")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    group.add_argument("--overwrite", action="store_true", help="replace the run in RUN_DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (there is one only when stderr is a terminal)")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision: CUDA bfloat16 (else float16 + loss scaling); CPU bfloat16 where it has "
                             "avx512_bf16/amx_bf16, else float32 (says which); loss terms in float32 where needed")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the trained model (CPU needs a C compiler; the first steps are slow)")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last memory layout (same results within float rounding; ~1.2x faster steps on CPU)")
    add_device_argument(parser)
    add_threads_argument(parser)
    add_data_root_argument(parser)


def flag_updates(args: argparse.Namespace) -> dict:
    """The training flags given (--device, --amp, --compile, --channels-last, --threads) as typed config updates."""
    flags = {"device": args.device if args.device != "auto" else None, "amp": args.amp or None,
             "compile": args.compile or None, "channels_last": args.channels_last or None,
             "threads": args.threads or None}
    return {key: value for key, value in flags.items() if value is not None}


def load_config(args: argparse.Namespace, updates: dict | None = None):
    """The run's config: profile/file, then the user's --set, then the flags and ``updates`` (typed); sets
    (and prints, on rank 0 under torchrun) this process's torch threads."""
    config = load_run_config(args.config, args.overrides, updates={**(updates or {}), **flag_updates(args)})
    use_threads(args.threads or None, configured=config.threads, command=f"fakd {args.command}",
                quiet=not ranks_from_environment().is_main)
    return config


def print_summary(summary: dict) -> None:
    """The run's one-line result (on rank 0 only under torchrun: the others trained the same run)."""
    if not ranks_from_environment().is_main:
        return
    best = summary["best_val_psnr"]
    print(f"{summary['role']} {summary['model']}: {summary['final_iteration']} iterations in "
          f"{summary['wall_time_seconds']:.0f} s, best validation PSNR "
          f"{'n/a' if best is None else f'{best:.3f} dB'} (iteration {summary['best_iteration']}); "
          f"best checkpoint {summary['best_checkpoint']}")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a teacher or a student without distillation",
        description="Train the config's teacher or student model with L1 to HR on training patches; "
        "the best checkpoint by validation PSNR is RUN_DIR/checkpoints/best.pt. Under torchrun "
        "(torchrun --nproc-per-node N -m fakd train ...) one run trains on N processes with "
        "DistributedDataParallel; data.batch_size is the global batch (docs/distributed.md).",
    )
    parser.add_argument("--role", choices=["teacher", "student"], required=True,
                        help="which of the config's two models to train")
    add_run_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    summary = train_run(config, role=args.role, out=args.out, data_root=resolve_data_root(args.data_root),
                        resume=args.resume, overwrite=args.overwrite, progress=shows_progress() and not args.no_progress)
    print_summary(summary)
    return 0
