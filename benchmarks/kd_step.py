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
    python benchmarks/kd_step.py --switches --repeats 7   # eager vs channels-last vs torch.compile

``--switches`` measures candidate switches applied from the outside of the trainer (the models put
in channels-last memory format, compiled with ``torch.compile``), each against the eager step, for
output KD and FAKD p=1 at the profile's patch with the tuned allocator; every switch starts from the
same seed and its first steps' losses must equal eager's within a relative ``LOSS_TOLERANCE``.

Targets: a FAKD step at most 1.3x an output-KD step at the ``cpu`` profile (issue 4), and at
most 1.25x at LR patch 48 (issue 13).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "kd_step.json"
SWITCHES_JSON = DEFAULT_JSON.with_name("kd_step_switches.json")
VARIANTS = {
    "student alone": {"methods": ["none"]},
    "output KD": {"methods": ["kd"]},
    "FAKD p=1": {"methods": ["fakd"]},
    "FAKD p=2": {"methods": ["fakd"], "options": {"fakd": {"p": 2}}},
}
TARGET_RATIO = 1.3  # issue 4: FAKD p=1 / output KD at the profile's patch
TARGET_RATIO_48 = 1.25  # issue 13: the same at the paper's patch 48


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


SWITCHES = {  # how the models run: channels-last memory format, torch.compile (inductor)
    "eager": {},
    "channels-last": {"channels_last": True},
    "compile": {"compile": True},
    "compile + channels-last": {"compile": True, "channels_last": True},
}
SWITCH_VARIANTS = ("output KD", "FAKD p=1")
LOSS_TOLERANCE = 1e-4  # relative: float reassociation in other kernels, over the few checked steps


def switch_runner(config, teacher, variant: str, switch: dict):
    """A step function for ``variant`` with ``switch`` applied from the outside of the trainer.

    Returns ``step(lr, hr) -> total loss`` (float). The student starts from seed 0 for every
    switch; taps are registered once, before compiling, so the compiled graphs include them.
    """
    import copy

    import torch

    from fakd.distill import FeatureTaps
    from fakd.train.distillation import build_objective
    from fakd.train.setup import build_role_model
    from fakd.train.trainer import compute_loss

    spec = VARIANTS[variant]
    config.distill.methods, config.distill.options = spec["methods"], spec.get("options", {})
    torch.manual_seed(0)
    student = build_role_model(config, "student")
    teacher = copy.deepcopy(teacher)
    objective = build_objective(config.distill, student=student, teacher=teacher)
    optimizer = torch.optim.Adam(list(student.parameters()) + list(objective.parameters()), lr=1e-4)
    layout = torch.channels_last if switch.get("channels_last") else torch.contiguous_format
    student.to(memory_format=layout)
    teacher.to(memory_format=layout)
    s_taps, t_taps = FeatureTaps(student, objective.student_taps), FeatureTaps(teacher, objective.teacher_taps)
    run_student, run_teacher = student, teacher
    if switch.get("compile"):
        # dynamo skips guards on hooks by default: a graph compiled for an untapped student of the
        # same class would be reused for a tapped one, and the taps would stay empty
        torch._dynamo.config.skip_nnmodule_hook_guards = False
        run_student, run_teacher = torch.compile(student), torch.compile(teacher)

    def step(lr, hr) -> float:
        total, _ = compute_loss(run_student, run_teacher, objective, lr.contiguous(memory_format=layout), hr,
                                student_taps=s_taps if objective.terms else None,
                                teacher_taps=t_taps if objective.terms else None)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        return total.item()

    return step


def measure_switches(profile: str, patch: int, *, repeats: int, warmup: int, threads: int,
                     overrides: list[str], check_steps: int) -> list[dict]:
    """Per variant × switch: median step time, and the first ``check_steps`` losses vs eager's."""
    import torch

    from fakd.train.config import load_run_config
    from fakd.train.setup import build_role_model

    torch.set_num_threads(threads)
    config = load_run_config(profile, overrides)
    torch.manual_seed(0)
    teacher = build_role_model(config, "teacher").requires_grad_(False).eval()
    batch, scale = config.data.batch_size, config.scale
    batches = [(torch.rand(batch, 3, patch, patch), torch.rand(batch, 3, patch * scale, patch * scale))
               for _ in range(max(check_steps, 1))]
    rows = []
    for variant in SWITCH_VARIANTS:
        runners, losses, setup = {}, {}, {}
        for name, switch in SWITCHES.items():
            start = time.perf_counter()
            runners[name] = switch_runner(config, teacher, variant, switch)
            losses[name] = [runners[name](lr, hr) for lr, hr in batches[:check_steps]]  # compiles here
            setup[name] = time.perf_counter() - start
        times = {name: [] for name in SWITCHES}
        for round_index in range(warmup + repeats):
            lr, hr = batches[round_index % len(batches)]
            for name, step in runners.items():
                start = time.perf_counter()
                step(lr, hr)
                if round_index >= warmup:
                    times[name].append(time.perf_counter() - start)
        for name in SWITCHES:
            deviation = max(abs(a - b) / abs(b) for a, b in zip(losses[name], losses["eager"]))
            rows.append({"patch": patch, "variant": variant, "switch": name,
                         "median_s": statistics.median(times[name]), "min_s": min(times[name]),
                         "repeats": repeats, "first_steps_s": setup[name], "losses": losses[name],
                         "max_relative_loss_deviation": deviation, "tolerance": LOSS_TOLERANCE,
                         "equal_within_tolerance": deviation <= LOSS_TOLERANCE})
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
    if args.switches:
        command += ["--switches", "--check-steps", str(args.check_steps)]
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


def check_targets(rows: list[dict], mallocs: list[str], profile_patch: int) -> list[dict]:
    """FAKD p=1 / output KD against the targets at the profile's patch and at 48, printed."""
    verdicts = []
    for malloc in mallocs:
        for patch, target in ((profile_patch, TARGET_RATIO), (48, TARGET_RATIO_48)):
            fakd_row = next((r for r in rows if r["malloc"] == malloc and r["patch"] == patch
                             and r["variant"] == "FAKD p=1"), None)
            if fakd_row is None:
                continue
            ratio = fakd_row["ratio_to_output_kd"]
            verdicts.append({"malloc": malloc, "patch": patch, "fakd_over_output_kd": ratio, "target": target,
                             "met": ratio <= target})
            print(f"target FAKD/output-KD <= {target} at patch {patch} ({malloc} malloc): "
                  f"{ratio:.2f} -> {'met' if ratio <= target else 'NOT met'}")
    return verdicts


def run_switches(args) -> int:
    """--switches: in a tuned-malloc child, the step with each switch; table + JSON."""
    if args.child:
        print(json.dumps(measure_switches(args.profile, args.patch_sizes[0], repeats=args.repeats,
                                          warmup=args.warmup, threads=args.threads, overrides=args.set,
                                          check_steps=args.check_steps)))
        return 0
    import platform

    import torch

    args.patch_sizes = args.patch_sizes[:1]
    rows = run_child(args, "tuned")
    print(f"kd_step switches: profile {args.profile}, LR patch {args.patch_sizes[0]}, {args.threads} thread(s), "
          f"tuned malloc, median of {args.repeats}; losses of the first {args.check_steps} steps vs eager")
    print(f"{'variant':10s} {'switch':24s} {'median s':>9s} {'speed-up':>9s} {'first steps s':>14s} {'max rel. loss dev.':>19s}")
    for row in rows:
        eager = next(r for r in rows if r["variant"] == row["variant"] and r["switch"] == "eager")
        row["speedup_over_eager"] = eager["median_s"] / row["median_s"]
        print(f"{row['variant']:10s} {row['switch']:24s} {row['median_s']:9.3f} {row['speedup_over_eager']:9.2f} "
              f"{row['first_steps_s']:14.1f} {row['max_relative_loss_deviation']:19.2e}"
              f"{'' if row['equal_within_tolerance'] else '  NOT EQUAL'}")
    result = {"benchmark": "kd_step switches", "profile": args.profile, "overrides": args.set, "threads": args.threads,
              "repeats": args.repeats, "check_steps": args.check_steps, "torch": torch.__version__,
              "machine": platform.machine(), "load_average": os.getloadavg(), "rows": rows}
    out = args.json or SWITCHES_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="run profile giving models, batch and scale (default cpu)")
    parser.add_argument("--patch-sizes", type=int, nargs="+", default=None,
                        help="LR patch sizes (default: the profile's and the paper's 48)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1, as a sweep worker)")
    parser.add_argument("--malloc", choices=["both", "default", "tuned"], default="both")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", type=Path, default=None,
                        help=f"output JSON (default {DEFAULT_JSON}, with --switches {SWITCHES_JSON.name})")
    parser.add_argument("--switches", action="store_true",
                        help="instead: eager vs channels-last vs torch.compile steps (output KD, FAKD p=1) at "
                             "the profile's patch, tuned malloc, losses checked against eager")
    parser.add_argument("--check-steps", type=int, default=3, help="--switches: steps whose losses are compared")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.patch_sizes is None:
        from fakd.train.config import load_run_config

        profile_patch = load_run_config(args.profile, args.set).data.patch_size
        args.patch_sizes = sorted({profile_patch, 48})
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.switches:
        return run_switches(args)
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
    verdicts = check_targets(rows, mallocs, config.data.patch_size)
    result = {
        "benchmark": "kd_step", "profile": args.profile, "overrides": args.set,
        "teacher": config.teacher.model.preset, "student": config.student.model.preset,
        "scale": config.scale, "batch_size": config.data.batch_size, "threads": args.threads,
        "repeats": args.repeats, "torch": torch.__version__, "machine": platform.machine(),
        "load_average": os.getloadavg(), "rows": rows, "target": verdicts,
        "note": "shared machine: absolute times are noisy, variants are interleaved so ratios are fairer",
    }
    out = args.json or DEFAULT_JSON
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
