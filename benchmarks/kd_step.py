"""Time per training step: student alone, output KD, FAKD (exact p=1), FAKD p=2 — side by side.

Each step is the trainer's own step (``fakd.train.trainer.compute_loss`` + backward + Adam), with
the profile's teacher/student presets, batch size and scale, at the profile's LR patch size and at
the paper's (48). Variants are interleaved round by round so that load from other processes on a
shared machine hits them alike; the table reports medians and ratios to the output-KD step.

The allocator matters (see ``fakd/malloc.py``), and it is set when a process starts, so the
measurements run in child processes: once with glibc's defaults and once with the tuned settings.

    python benchmarks/kd_step.py                       # cpu profile, patches 24 and 48, both mallocs
    python benchmarks/kd_step.py --profile smoke --repeats 2 --patch-sizes 8 --malloc tuned
    python benchmarks/kd_step.py --json benchmarks/results/kd_step.json

Target (issue 4): a FAKD step at most 1.3x an output-KD step at the ``cpu`` profile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "kd_step.json"
VARIANTS = {
    "student alone": {"methods": ["none"]},
    "output KD": {"methods": ["kd"]},
    "FAKD p=1": {"methods": ["fakd"]},
    "FAKD p=2": {"methods": ["fakd"], "options": {"fakd": {"p": 2}}},
}
TARGET_RATIO = 1.3


def measure(profile: str, patch_sizes: list[int], *, repeats: int, warmup: int, threads: int,
            overrides: list[str]) -> list[dict]:
    """Median seconds per step of every variant at every patch size, in this process."""
    import torch

    from fakd.distill import FeatureTaps
    from fakd.train.config import load_run_config
    from fakd.train.distillation import build_objective
    from fakd.train.setup import build_role_model
    from fakd.train.trainer import compute_loss

    torch.set_num_threads(threads)
    config = load_run_config(profile, overrides)
    rows = []
    for patch in patch_sizes:
        torch.manual_seed(0)
        teacher = build_role_model(config, "teacher").requires_grad_(False).eval()
        lr = torch.rand(config.data.batch_size, 3, patch, patch)
        hr = torch.rand(config.data.batch_size, 3, patch * config.scale, patch * config.scale)
        runners = {}
        for name, spec in VARIANTS.items():
            config.distill.methods = spec["methods"]
            config.distill.options = spec.get("options", {})
            student = build_role_model(config, "student")
            objective = build_objective(config.distill, student=student, teacher=teacher)
            optimizer = torch.optim.Adam(list(student.parameters()) + list(objective.parameters()), lr=1e-5)
            runners[name] = (student, objective, optimizer)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for round_index in range(warmup + repeats):
            for name, (student, objective, optimizer) in runners.items():
                uses_teacher = objective.needs_teacher
                with FeatureTaps(student, objective.student_taps) as s_taps, \
                        FeatureTaps(teacher, objective.teacher_taps) as t_taps:
                    start = time.perf_counter()
                    total, _ = compute_loss(student, teacher if uses_teacher else None, objective, lr, hr,
                                            student_taps=s_taps if objective.terms else None,
                                            teacher_taps=t_taps if objective.terms else None)
                    optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    optimizer.step()
                    elapsed = time.perf_counter() - start
                if round_index >= warmup:
                    times[name].append(elapsed)
        for name, values in times.items():
            rows.append({"patch": patch, "variant": name, "median_s": statistics.median(values),
                         "min_s": min(values), "repeats": len(values)})
    return rows


def run_child(args, malloc: str) -> list[dict]:
    """Run ``measure`` in a fresh process whose allocator is ``malloc`` (default | tuned)."""
    from fakd.malloc import tuned_malloc_env, untuned_malloc_env

    env = tuned_malloc_env() if malloc == "tuned" else untuned_malloc_env()
    command = [sys.executable, __file__, "--child", "--profile", args.profile, "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--threads", str(args.threads),
               "--patch-sizes", *map(str, args.patch_sizes)]
    for item in args.set:
        command += ["--set", item]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"child ({malloc} malloc) failed:\n{result.stderr}")
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    for row in rows:
        row["malloc"] = malloc
    return rows


def add_ratios(rows: list[dict]) -> None:
    for row in rows:
        reference = next(r for r in rows if r["patch"] == row["patch"] and r["malloc"] == row["malloc"]
                         and r["variant"] == "output KD")
        row["ratio_to_output_kd"] = row["median_s"] / reference["median_s"]


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'malloc':8s} {'patch':>5s}  {'variant':14s} {'median s':>9s} {'min s':>8s} {'/ output KD':>11s}")
    for row in rows:
        print(f"{row['malloc']:8s} {row['patch']:5d}  {row['variant']:14s} {row['median_s']:9.3f} "
              f"{row['min_s']:8.3f} {row['ratio_to_output_kd']:11.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="run profile giving models, batch and scale (default cpu)")
    parser.add_argument("--patch-sizes", type=int, nargs="+", default=None,
                        help="LR patch sizes (default: the profile's and the paper's 48)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1, as a sweep worker)")
    parser.add_argument("--malloc", choices=["both", "default", "tuned"], default="both")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON (default {DEFAULT_JSON})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.patch_sizes is None:
        from fakd.train.config import load_run_config

        profile_patch = load_run_config(args.profile, args.set).data.patch_size
        args.patch_sizes = sorted({profile_patch, 48})
    if args.child:
        rows = measure(args.profile, args.patch_sizes, repeats=args.repeats, warmup=args.warmup,
                       threads=args.threads, overrides=args.set)
        print(json.dumps(rows))
        return 0

    import platform

    import torch

    from fakd.train.config import load_run_config

    config = load_run_config(args.profile, args.set)
    mallocs = ["default", "tuned"] if args.malloc == "both" else [args.malloc]
    rows = [row for malloc in mallocs for row in run_child(args, malloc)]
    add_ratios(rows)
    header = (f"kd_step: profile {args.profile}, teacher {config.teacher.model.preset} -> student "
              f"{config.student.model.preset}, x{config.scale}, batch {config.data.batch_size}, "
              f"{args.threads} thread(s), median of {args.repeats}")
    print_table(rows, header)
    profile_patch = config.data.patch_size
    verdicts = []
    for malloc in mallocs:
        fakd_row = next((r for r in rows if r["malloc"] == malloc and r["patch"] == profile_patch
                         and r["variant"] == "FAKD p=1"), None)
        if fakd_row is not None:
            ratio = fakd_row["ratio_to_output_kd"]
            verdicts.append({"malloc": malloc, "fakd_over_output_kd": ratio, "target": TARGET_RATIO,
                             "met": ratio <= TARGET_RATIO})
            print(f"target FAKD/output-KD <= {TARGET_RATIO} at patch {profile_patch} ({malloc} malloc): "
                  f"{ratio:.2f} -> {'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    result = {
        "benchmark": "kd_step",
        "profile": args.profile,
        "overrides": args.set,
        "teacher": config.teacher.model.preset,
        "student": config.student.model.preset,
        "scale": config.scale,
        "batch_size": config.data.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.machine(),
        "rows": rows,
        "target": verdicts,
        "note": "shared machine: absolute times are noisy, variants are interleaved so ratios are fairer",
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
