"""``fakd distill``: train the config's student with a frozen teacher checkpoint and KD terms.

Methods (repeat ``--method`` to combine): ``none`` (no teacher; the baseline), ``kd`` (output
distillation, ``(1 − α)·L1(SR, HR) + α·L1(SR, SR_teacher)``), and the feature terms ``fakd``,
``fitnet``, ``at``, ``fsp``, ``ca``, each added to the kd loss (the paper's FAKD is kd + w ×
affinity). ``--weight`` is given once for all feature methods or once per feature method in the
order of ``--method`` (``kd`` and ``none`` take no weight), in the official code's units (against
L1 on 0–255 pixels); default weights: fakd 1 (as run for the paper; 10 as its README writes),
ca 1, fitnet 1, at 1000, fsp 1 (``fakd.distill.methods``). α (default 0.5):
``--set distill.alpha=...``; ``--set distill.alpha=0`` gives feature terms without output KD. Under
torchrun (``torchrun --nproc-per-node N -m fakd distill ...``) one run trains on N processes with
DistributedDataParallel; data.batch_size is the global batch (docs/distributed.md).
"""

import argparse
from pathlib import Path

from fakd.commands.common import shows_progress
from fakd.commands.train import add_run_arguments, load_config, print_summary
from fakd.data.roots import resolve_data_root
from fakd.distill import known_methods
from fakd.paths import check_not_a_file
from fakd.train.distillation import distill_updates
from fakd.train.trainer import train_run


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="train a student with knowledge distillation from a teacher checkpoint",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    parser.add_argument("--teacher", required=True, metavar="CKPT", help="teacher checkpoint (fakd train --role "
                        "teacher), fakd:<name> for a shipped teacher, or official RCAN/EDSR weights, a BasicSR "
                        "checkpoint or a .safetensors file (docs/models.md)")
    parser.add_argument("--method", action="append", default=None, metavar="METHOD",
                        help=f"{' | '.join(known_methods())}; repeatable (default: the config's, fakd)")
    parser.add_argument("--weight", action="append", type=float, default=None, metavar="W",
                        help="weight of the feature term(s), official units (vs L1 on 0-255 pixels): once for all, or once per feature method")
    parser.add_argument("--taps", nargs="+", default=None, metavar="TAP",
                        help="student tap points (module paths, e.g. body.2 body.6 long_skip); the teacher "
                        "uses the same names unless --teacher-taps is given (default: the models' taps)")
    parser.add_argument("--teacher-taps", nargs="+", default=None, metavar="TAP",
                        help="teacher tap points paired one to one with --taps")
    parser.add_argument("--p", type=int, choices=[1, 2], default=None,
                        help="FAKD affinity distance: 1 = the paper's L1 (default), 2 = squared (Gram identity)")
    parser.add_argument("--teacher-cache", default=None, metavar="DIR",
                        help="share the teacher's outputs per batch with other runs of the same teacher, data "
                        "and seed through DIR (the same results; a FAKD step ~1.5x faster where another run "
                        "stored them; ~2.7 MB per iteration at the cpu profile)")
    add_run_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    updates = distill_updates(args.method, weights=args.weight, student_taps=args.taps, teacher_taps=args.teacher_taps,
                              p=args.p)
    cache = None
    if args.teacher_cache:  # a read-only folder is fine: the run reads what is there
        cache = check_not_a_file(Path(args.teacher_cache), label="--teacher-cache")
        updates["teacher_cache"] = True
    config = load_config(args, updates)
    summary = train_run(config, role="distill", out=args.out, teacher_checkpoint=args.teacher,
                        data_root=resolve_data_root(args.data_root), resume=args.resume,
                        overwrite=args.overwrite, progress=shows_progress() and not args.no_progress,
                        teacher_cache=cache)
    print_summary(summary)
    return 0
