"""The trainer's own FAKD step with each speed switch, against the eager baseline, and the FLOP floor.

Each variant is a real ``fakd.train.trainer.Training`` of a profile's distilled student (default:
the ``cpu`` profile, FAKD p=1 at its weight, its teacher preset with fresh weights): a batch from
the real patch pool, the teacher (live, or read from the teacher-output cache), the objective,
backward and Adam — ``Training.step``, validation and checkpoints left out. Variants step through
the same iterations (the same batches) in interleaved rounds of ``--steps`` steps, so load from
other processes hits them alike; the table gives the median seconds per step and the speed-up over
``eager`` (every switch off: today's default path, the side-by-side baseline). Losses: each
variant's over the ``--warmup`` first steps against eager's (relative, ``LOSS_TOLERANCE``; over
more steps float rounding compounds through the weights, and the JSON gives that too), and the
cached variant's over every step against channels-last's (bitwise: the same arithmetic).

    python benchmarks/train_step.py --data-root DATA                  # cpu profile, tuned malloc
    python benchmarks/train_step.py --rounds 7 --json benchmarks/results/train_step.json --data-root DATA
    python benchmarks/train_step.py --profile smoke --rounds 2 --steps 2  # quick check (embedded data)

Variants: ``eager``; ``channels-last``; ``compile`` (inductor; its first steps are timed apart);
``channels-last + teacher cache``: the teacher's outputs read from a cache that an untimed run filled
first — what every run of a study after the first one of its seed does.

The floor: the step's FLOPs (``torch.utils.flop_counter.FlopCounterMode``) over this machine's
rate for the dominant operation (a 3x3 convolution of the student's width at the profile's batch
and patch, measured in the same run): the time of the arithmetic alone at that rate.

Target (issue 13): a FAKD student step at the cpu profile >= 1.5x faster than the eager baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fakd.train.teacher_cache import CHUNK

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "train_step.json"
LOSS_TOLERANCE = 1e-4
TARGET_SPEEDUP = 1.5
VARIANTS = {
    "eager": [],
    "channels-last": ["channels_last=true"],
    "compile": ["compile=true"],
    "channels-last + teacher cache": ["channels_last=true", "teacher_cache=true"],
}


class _NoBar:
    def close(self) -> None:
        pass


def _teacher_checkpoint(config, folder: Path) -> Path:
    """A checkpoint of the profile's teacher preset (fresh weights: the step's cost does not depend on them)."""
    import torch

    from fakd.train.setup import build_role_model
    from fakd.zoo.checkpoint import save_checkpoint

    torch.manual_seed(1)
    teacher = build_role_model(config, "teacher")
    return save_checkpoint({"model_config": dict(teacher.config), "model_name": "benchmark teacher",
                            "model_state": teacher.state_dict()}, folder / "teacher.pt")


def _training(profile: str, overrides: list[str], *, folder: Path, name: str, teacher: Path, data_root):
    from fakd.train.config import load_run_config
    from fakd.train.trainer import Training

    config = load_run_config(profile, [*overrides, "distill.methods=[fakd]"])
    return Training.set_up(config, role="distill", out=folder / name, teacher_checkpoint=teacher,
                           data_root=data_root, resume=False, overwrite=False, teacher_cache=folder / "cache")


def _steps(training, taps, count: int) -> tuple[float, list[float]]:
    """Seconds per step over ``count`` steps, and their losses."""
    start, losses = time.perf_counter(), []
    for _ in range(count):
        total, _, _ = training.step(*taps, bar=_NoBar())
        losses.append(float(total.detach()))
    return (time.perf_counter() - start) / count, losses


def step_flops(training, taps) -> int:
    """FLOPs of one more step of ``training`` (counted, and taken: the step is real)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        training.step(*taps, bar=_NoBar())
    return counter.get_total_flops()


def conv_rate(config, width: int) -> float:
    """FLOP/s of the student's 3x3 convolution at the profile's batch and patch (fwd, channels-last)."""
    import torch

    conv = torch.nn.Conv2d(width, width, 3, padding=1).requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.rand(config.data.batch_size, width, config.data.patch_size, config.data.patch_size)
    x = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * x.numel() * width * 9
    for _ in range(5):
        conv(x)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        conv(x)
        times.append(time.perf_counter() - start)
    return flops / statistics.median(times)


def measure(args) -> dict:
    """All variants, interleaved; per variant the median step time, losses, FLOPs."""
    import torch

    from fakd.train.config import load_run_config

    torch.set_num_threads(args.threads)
    config = load_run_config(args.profile, args.set)
    total_steps = args.warmup + args.rounds * args.steps
    with tempfile.TemporaryDirectory(prefix="fakd-train-step-") as temporary:
        folder = Path(temporary)
        teacher = _teacher_checkpoint(config, folder)
        filler = _training(args.profile, [*args.set, *VARIANTS["channels-last + teacher cache"]], folder=folder,
                           name="filler", teacher=teacher, data_root=args.data_root)
        with filler.taps() as taps:  # the first run of a seed, storing the teacher's outputs (timed apart)
            storing, _ = _steps(filler, taps, -(-(total_steps + 1) // CHUNK) * CHUNK)  # whole chunks: stored whole
        runs = {name: _training(args.profile, [*args.set, *switches], folder=folder, name=name.replace(" ", "_"),
                                teacher=teacher, data_root=args.data_root) for name, switches in VARIANTS.items()
                if name in args.variants}
        contexts = {name: run.taps() for name, run in runs.items()}
        taps = {name: context.__enter__() for name, context in contexts.items()}
        first, times, losses = {}, {name: [] for name in runs}, {name: [] for name in runs}
        for name, run in runs.items():
            first[name], losses[name] = _steps(run, taps[name], args.warmup)
        for _ in range(args.rounds):
            for name, run in runs.items():
                seconds, round_losses = _steps(run, taps[name], args.steps)
                times[name].append(seconds)
                losses[name] += round_losses
        flops = {name: step_flops(run, taps[name]) for name, run in runs.items()}
        cache = {name: run.teacher_cache.summary() for name, run in runs.items() if run.teacher_cache is not None}
        width = filler.model.config["n_feats"]
        for context in contexts.values():
            context.__exit__(None, None, None)
    return {"config": config, "first": first, "times": times, "losses": losses, "flops": flops, "cache": cache,
            "rate": conv_rate(config, width), "storing_s": storing}


def rows_of(measured: dict, args) -> list[dict]:
    eager = statistics.median(measured["times"]["eager"]) if "eager" in measured["times"] else None
    rows = []
    losses = measured["losses"]
    for name, times in measured["times"].items():
        median = statistics.median(times)
        deviations = [abs(a - b) / abs(b) for a, b in zip(losses[name], losses["eager"])]
        deviation = max(deviations[:args.warmup])
        floor = measured["flops"][name] / measured["rate"]
        rows.append({"variant": name, "median_s": median, "min_s": min(times), "rounds": len(times),
                     "steps_per_round": args.steps, "warmup_s_per_step": measured["first"][name],
                     "speedup_over_eager": eager / median if eager else None,
                     "gflop_per_step": measured["flops"][name] / 1e9, "floor_s": floor, "over_floor": median / floor,
                     "max_relative_loss_deviation": deviation, "equal_within_tolerance": deviation <= LOSS_TOLERANCE,
                     "whole_run_relative_loss_deviation": max(deviations), "losses": losses[name],
                     "teacher_cache": measured["cache"].get(name)})
    if "channels-last + teacher cache" in losses and "channels-last" in losses:
        rows[-1]["bitwise_equal_to_channels_last"] = losses["channels-last + teacher cache"] == losses["channels-last"]
    return rows


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'variant':31s} {'median s':>9s} {'speed-up':>9s} {'GFLOP':>7s} {'floor s':>8s} {'x floor':>8s} "
          f"{'first s/step':>13s} {'max rel. loss dev.':>19s}")
    for row in rows:
        speedup = f"{row['speedup_over_eager']:9.2f}" if row["speedup_over_eager"] else f"{'-':>9s}"
        print(f"{row['variant']:31s} {row['median_s']:9.3f} {speedup} {row['gflop_per_step']:7.1f} "
              f"{row['floor_s']:8.3f} {row['over_floor']:8.2f} {row['warmup_s_per_step']:13.2f} "
              f"{row['max_relative_loss_deviation']:19.2e}{'' if row['equal_within_tolerance'] else '  NOT EQUAL'}")
    for row in rows:
        if "bitwise_equal_to_channels_last" in row:
            print(f"{row['variant']}: losses bitwise equal to channels-last's over all "
                  f"{len(row['losses'])} steps: {row['bitwise_equal_to_channels_last']}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--data-root", default=None, help="folder of <Set>/HR (default: $FAKD_DATA_ROOT; the "
                        "cpu profile's T91+BSD200 need one; without, add --set data.train_sets=[skimage-train])")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the median is over these)")
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a sweep worker)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if "eager" not in args.variants:
        args.variants.insert(0, "eager")
    # the profile's own switches are the variants' business: every variant starts from all off
    args.set = ["channels_last=false", "compile=false", "teacher_cache=false", *args.set]
    return args


def run_in_tuned_child(argv: list[str]) -> int:
    """Re-run this script with fakd's tuned allocator (it acts only at process start)."""
    from fakd.malloc import tuned_malloc_env

    return subprocess.run([sys.executable, __file__, *argv, "--child"], env=tuned_malloc_env(), check=False).returncode


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if not args.child:
        return run_in_tuned_child(argv)
    import torch

    measured = measure(args)
    rows = rows_of(measured, args)
    config = measured["config"]
    print_table(rows, f"train_step: profile {args.profile}, {config.teacher.model.preset} -> "
                      f"{config.student.model.preset}, FAKD, x{config.scale}, batch {config.data.batch_size}, LR patch "
                      f"{config.data.patch_size}, {args.threads} thread(s), tuned malloc, median of {args.rounds} "
                      f"rounds x {args.steps} steps; conv rate {measured['rate'] / 1e9:.0f} GFLOP/s")
    print(f"the run that stores the teacher's outputs (channels-last, before the others, not interleaved): "
          f"{measured['storing_s']:.3f} s/step")
    best = max((row for row in rows if row["equal_within_tolerance"]), key=lambda row: row["speedup_over_eager"])
    met = best["speedup_over_eager"] >= TARGET_SPEEDUP
    print(f"target step >= {TARGET_SPEEDUP}x eager: best {best['variant']} {best['speedup_over_eager']:.2f}x -> "
          f"{'met' if met else 'NOT met'}")
    result = {"benchmark": "train_step", "profile": args.profile, "overrides": args.set, "threads": args.threads,
              "torch": torch.__version__, "machine": platform.machine(), "load_average": os.getloadavg(),
              "conv_gflops": measured["rate"] / 1e9, "rows": rows, "storing_run_s_per_step": measured["storing_s"],
              "target": {"speedup": TARGET_SPEEDUP, "best": best["variant"], "met": met}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
