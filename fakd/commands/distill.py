"""``fakd distill``: train the config's student with a frozen teacher checkpoint and KD terms.

Methods (repeat ``--method`` to combine): ``none`` (no teacher; the baseline), ``kd`` (output
distillation, ``(1 − α)·L1(SR, HR) + α·L1(SR, SR_teacher)``), and the feature terms ``fakd``,
``fitnet``, ``at``, ``fsp``, ``ca``, each added to the kd loss (the paper's FAKD is kd + 10 ×
affinity). ``--weight`` is given once for all feature methods or once per feature method in the
order of ``--method`` (``kd`` and ``none`` take no weight); the default weights are in
``fakd.engine.distillation.DEFAULT_WEIGHTS`` (fakd 10 as in the paper).
"""

import argparse

from fakd.commands.train import add_run_arguments, load_config, print_summary
from fakd.data.roots import resolve_data_root
from fakd.distill import FEATURE_LOSSES, KNOWN_METHODS
from fakd.engine.distillation import check_methods
from fakd.engine.trainer import train_run
from fakd.errors import FakdError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill",
        help="train a student with knowledge distillation from a teacher checkpoint",
        description=__doc__.split("\n\n", 1)[1].replace("``", ""),
    )
    parser.add_argument("--teacher", required=True, metavar="CKPT", help="teacher checkpoint (fakd train --role teacher)")
    parser.add_argument("--method", action="append", default=None, metavar="METHOD",
                        help=f"{' | '.join(KNOWN_METHODS)}; repeatable (default: the config's, fakd)")
    parser.add_argument("--weight", action="append", type=float, default=None, metavar="W",
                        help="weight of the feature term(s): once for all, or once per feature method")
    parser.add_argument("--taps", nargs="+", default=None, metavar="TAP",
                        help="student tap points (module paths, e.g. body.2 body.6 body_tail); the teacher "
                        "uses the same names unless --teacher-taps is given (default: the models' taps)")
    parser.add_argument("--teacher-taps", nargs="+", default=None, metavar="TAP",
                        help="teacher tap points paired one to one with --taps")
    add_run_arguments(parser)
    parser.set_defaults(handler=run)


def distill_overrides(args: argparse.Namespace) -> list[str]:
    """The --method/--weight/--taps options as config overrides (applied after --set)."""
    overrides = []
    methods = None
    if args.method:
        methods = check_methods(args.method)
        overrides.append(f"distill.methods=[{','.join(methods)}]")
    if args.weight:
        if any(weight < 0 for weight in args.weight):
            raise FakdError(f"--weight must be ≥ 0, got {args.weight}")
        if methods is None:
            raise FakdError("--weight needs --method (which term it weighs)")
        featured = [method for method in methods if method in FEATURE_LOSSES]
        if not featured:
            raise FakdError(f"--weight given, but methods {methods} have no feature term to weigh")
        if len(args.weight) == 1:
            weights = dict.fromkeys(featured, args.weight[0])
        elif len(args.weight) == len(featured):
            weights = dict(zip(featured, args.weight))
        else:
            raise FakdError(f"{len(args.weight)} --weight values for {len(featured)} feature method(s) "
                            f"{featured}: give one for all or one per feature method")
        overrides += [f"distill.weights.{method}={weight!r}" for method, weight in weights.items()]
    if args.taps:
        overrides.append(f"distill.student_taps=[{','.join(args.taps)}]")
    if args.teacher_taps:
        overrides.append(f"distill.teacher_taps=[{','.join(args.teacher_taps)}]")
    return overrides


def run(args: argparse.Namespace) -> int:
    args.overrides = list(args.overrides) + distill_overrides(args)
    config = load_config(args)
    summary = train_run(config, role="distill", out=args.out, teacher_checkpoint=args.teacher,
                        data_root=resolve_data_root(args.data_root), resume=args.resume,
                        overwrite=args.overwrite, progress=not args.no_progress)
    print_summary(summary)
    return 0
