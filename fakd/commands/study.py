"""``fakd study``: run the study's notebooks in order (reusing finished runs) and render the report."""

import argparse
import shlex
import sys
from pathlib import Path

from fakd.commands.common import add_data_root_argument, add_device_argument, require_notebook_tools
from fakd.commands.sweep import add_cluster_arguments, interrupt_on_sigterm
from fakd.train.config import PROFILES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "study",
        help="run the study notebooks (primer … ablation report) and render them as one report",
        description="Execute the study's notebooks with papermill in order: primer, teacher "
        "training, the student sweep, affinity explorer, comparison, ablation report. Finished runs with unchanged "
        "parameters and notebook code are reused, so running it again only renders. The report "
        "(index.html, README.md, html/, figures/) goes to --out; the run folders (checkpoints, executed "
        "notebooks) to --runs.",
    )
    parser.add_argument("--profile", choices=PROFILES, default="cpu",
                        help="smoke (seconds, for tests), demo (~10 min on the embedded photographs and the "
                        "shipped teacher; `make study` without a data root), cpu (default; hours, needs the "
                        "data root), paper (GPU)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="report folder (default: reports/<profile>, or reports/<profile>-<test sets> when "
                        "that holds a report of the same profile on other data); the report there is replaced "
                        "only when the whole study succeeded")
    parser.add_argument("--runs", type=Path, default=None, metavar="DIR",
                        help="folder of the run folders (default: runs/<name of --out>)")
    add_cluster_arguments(parser, workers_help="local worker processes for the student sweep: runs at once, "
                          "one torch thread each (default 1)")
    parser.add_argument("--archive", type=Path, default=None, metavar="DIR",
                        help="keep the training steps' finished runs (small files; the teacher's and each "
                        "configuration's lowest-seed model) in DIR as they finish, and restore missing run "
                        "folders from it at start: commit DIR to continue a long study on another machine")
    parser.add_argument("--render-only", action="store_true",
                        help="train nothing: render the report from the finished training runs (with --archive: "
                        "the committed ones), re-executing only the cheap report notebooks; points not yet "
                        "trained are listed as pending")
    parser.add_argument("--teacher", default=None, metavar="FILE",
                        help="adopt this model as the teacher instead of training the profile's (or adopting the "
                        "demo's shipped one): a fakd checkpoint, fakd:<name>, official RCAN/EDSR weights, a "
                        "BasicSR checkpoint or a .safetensors file of the profile's scale; a teacher of another "
                        "depth is tapped at the same relative depths (docs/models.md)")
    add_data_root_argument(parser)
    add_device_argument(parser)
    parser.set_defaults(handler=run)


def print_step(entry) -> None:
    note = f" ({entry.note})" if entry.note else ""
    print(f"study: {entry.title}: {entry.status}{note}", flush=True)


def announce(*, profile: str, data_root, report_dir: Path, runs_dir: Path) -> None:
    """Say at the start which study runs on which data, where it goes, and how to run the full one."""
    from fakd.data import resolve_data_root

    root = resolve_data_root(data_root)
    data = f"data root {root}" if root is not None else "no data root: the embedded scikit-image photographs"
    print(f"study: profile {profile} ({data}); report -> {report_dir}, runs -> {runs_dir}", flush=True)
    if profile in ("smoke", "demo"):
        print("study: the full study is the cpu profile (hours, needs Set5/Set14/B100 and T91/BSD200 under a data "
              "root): make study DATA_ROOT=<folder>  or  fakd study --profile cpu --data-root <folder>", flush=True)


def run(args: argparse.Namespace) -> int:
    require_notebook_tools()
    from fakd.study.cluster import scheduler_address
    from fakd.study.pipeline import report_identity, run_study
    from fakd.study.publish import default_report_folder

    report_dir = args.out
    if report_dir is None:
        identity = report_identity(args.profile, data_root=args.data_root)
        report_dir = default_report_folder(Path("reports") / args.profile, identity=identity)
    runs_dir = args.runs if args.runs is not None else Path("runs") / report_dir.name
    announce(profile=args.profile, data_root=args.data_root, report_dir=report_dir, runs_dir=runs_dir)
    command = "fakd " + " ".join(shlex.quote(word) for word in sys.argv[1:]) if sys.argv[1:] else "fakd study"
    with interrupt_on_sigterm():
        report = run_study(profile=args.profile, report_dir=report_dir, runs_dir=runs_dir, data_root=args.data_root,
                           device=None if args.device == "auto" else args.device, workers=args.workers,
                           command=command, on_step=print_step, archive=args.archive,
                           scheduler=scheduler_address(args.scheduler), gpus_per_point=args.gpus_per_point,
                           render_only=args.render_only, teacher=args.teacher)
    if report.failure:
        print(f"fakd study: {report.failure}; the previous report in {report_dir} is untouched, this run's "
              f"partial report is {report.index}", file=sys.stderr)
        return 1
    print(f"study: report in {report.index} and {report.readme}")
    print_teacher_cache(runs_dir / "teacher", freed=report.cache_freed)
    return 0


def print_teacher_cache(teacher_run: Path, *, freed: int) -> None:
    """The space the students' shared teacher outputs use now and what the study freed as seeds finished
    (the entries of an unfinished seed are kept: the next invocation reads them)."""
    from fakd.train.runs import TEACHER_CACHE_FOLDER
    from fakd.train.teacher_cache import cache_usage

    folder = teacher_run / TEACHER_CACHE_FOLDER
    if folder.is_dir() or freed:
        print(f"study: teacher cache {folder}: {cache_usage(folder) / 1e9:.1f} GB used, {freed / 1e9:.1f} GB freed "
              f"by this study as seeds finished (fakd.train.teacher_cache)")
