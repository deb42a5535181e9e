"""A training step in float32 and under bfloat16 autocast (``--amp`` on a CPU), part by part, side by side.

Two measurements in one run:

1. **Step time** of no KD, output KD and FAKD at the profile's settings (cpu: batch 8, LR patch 24,
   channels-last, the cpu teacher and student), float32 against bfloat16, with one and with two
   torch threads: per part (teacher forward, student forward, loss, backward, optimiser) as the
   trainer runs them (autocast around the forwards and the loss; ``fakd.train.trainer``). Every
   (threads, variant, precision) case runs ``--steps`` steps per round, the cases interleaved round by
   round so that load from other processes hits all alike; a case's time is its best round's mean
   step (best of ``--rounds``). The models are the profile's presets, freshly initialised (a step's
   cost does not depend on the weights); the batches are random.
2. **Loss-term precision** on real features: the shipped cpu teacher and a shipped cpu student on one
   batch of the profile's training patches; every distillation term per tap pair, and the two L1
   terms, through ``fakd.distill.precision.precision_errors`` (value and gradient against float64).

Runs in one child process with the allocator settings of a sweep worker (``fakd.malloc``).

    python benchmarks/bf16_step.py --data-root DATA                 # the cpu profile, 1 and 2 threads
    python benchmarks/bf16_step.py --data-root DATA --rounds 2 --steps 4 --threads 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "bf16_step.json"
PARTS = ("teacher forward", "student forward", "loss", "backward", "optimizer")
VARIANTS = {"no KD": ["none"], "output KD": ["kd"], "FAKD": ["fakd"]}
PRECISIONS = ("float32", "bfloat16")
TEACHER, STUDENT = "fakd:rcan-cpu-teacher-x4", "fakd:rcan-cpu-student-fakd-w100-x4-s0"


def make_case(config, variant: str, teacher):
    """(student, objective, optimizer) of one variant, the student freshly initialised (seed 0)."""
    import torch

    from fakd.train.distillation import build_objective
    from fakd.train.setup import build_role_model

    config.distill.methods = VARIANTS[variant]
    torch.manual_seed(0)
    student = build_role_model(config, "student").to(memory_format=torch.channels_last).train()
    objective = build_objective(config.distill, student=student, teacher=teacher)
    optimizer = torch.optim.Adam(list(student.parameters()) + list(objective.parameters()), lr=1e-5)
    return student, objective, optimizer


def timed_step(case, teacher_model, lr, hr, *, dtype) -> dict[str, float]:
    """One training step as the trainer makes it (taps on both models as it sets them); seconds per part."""
    import torch

    from fakd.train.loss import PairedTaps
    from fakd.train.teacher_cache import run_teacher

    student, objective, optimizer = case
    uses_teacher = objective.needs_teacher
    taps = PairedTaps(student, objective.student_taps, teacher_model if uses_teacher else None, objective.teacher_taps)
    times, clock = {}, time.perf_counter
    with taps as (student_taps, teacher_taps), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
        start = clock()
        teacher = run_teacher(teacher_model, lr, teacher_taps) if uses_teacher else None
        times["teacher forward"], start = clock() - start, clock()
        student_sr = student(lr)
        times["student forward"], start = clock() - start, clock()
        total, _ = objective(student_sr=student_sr.float(), hr=hr,
                             teacher_sr=None if teacher is None else teacher.sr.float(),
                             student_features=student_taps.features if student_taps is not None else None,
                             teacher_features=None if teacher is None else teacher.features)
        times["loss"], start = clock() - start, clock()
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    times["backward"], start = clock() - start, clock()
    optimizer.step()
    times["optimizer"] = clock() - start
    return times


def measure_steps(config, *, threads: list[int], rounds: int, steps: int) -> list[dict]:
    """Per (threads, variant, precision): the best round's mean seconds per step and its parts."""
    import torch

    from fakd.train.setup import build_role_model

    torch.manual_seed(0)
    teacher = build_role_model(config, "teacher").requires_grad_(False).eval().to(memory_format=torch.channels_last)
    batch, patch, scale = config.data.batch_size, config.data.patch_size, config.scale
    lr = torch.rand(batch, 3, patch, patch).contiguous(memory_format=torch.channels_last)
    hr = torch.rand(batch, 3, patch * scale, patch * scale)
    cases = {(count, variant, precision): make_case(config, variant, teacher)
             for count in threads for variant in VARIANTS for precision in PRECISIONS}
    rounds_seen: dict[tuple, list[dict]] = {key: [] for key in cases}
    for round_index in range(rounds + 1):  # round 0 warms every case up and is not counted
        for key, case in cases.items():
            torch.set_num_threads(key[0])
            dtype = torch.bfloat16 if key[2] == "bfloat16" else None
            parts = [timed_step(case, teacher, lr, hr, dtype=dtype) for _ in range(steps if round_index else 2)]
            if round_index:
                rounds_seen[key].append({part: sum(p[part] for p in parts) / steps for part in PARTS})
        print(f"  round {round_index}/{rounds} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    rows = []
    for (count, variant, precision), seen in rounds_seen.items():
        best = min(seen, key=lambda parts: sum(parts.values()))
        rows.append({"threads": count, "variant": variant, "precision": precision, "s_per_step": sum(best.values()),
                     "parts": best, "rounds_s_per_step": [sum(parts.values()) for parts in seen]})
    return rows


def measure_precision(config, *, data_root: str | None) -> list[dict]:
    """Every term's precision errors on the shipped teacher's and student's features of batch 0."""
    import torch
    from torch import nn

    from fakd.distill import FeatureTaps
    from fakd.distill.affinity import affinity_loss
    from fakd.distill.methods import FEATURE_METHODS, METHODS, build_loss
    from fakd.distill.precision import needs_float32, precision_errors
    from fakd.train.data import open_training_patches
    from fakd.zoo.named_models import model_from_spec

    class HalfAffinity(nn.Module):  # FAKD's exact loss with its tiles in bfloat16
        def __init__(self, p: int):
            super().__init__()
            self.p = p

        def forward(self, student, teacher):
            return affinity_loss(student, teacher, self.p, compute_dtype=torch.bfloat16)

    lr, hr = open_training_patches(config, data_root=data_root).batch(0, config.data.batch_size)
    (_, teacher), (_, student) = (model_from_spec(spec, scale=config.scale) for spec in (TEACHER, STUDENT))
    taps = list(teacher.default_taps)
    with torch.no_grad(), FeatureTaps(teacher, taps) as t_taps, FeatureTaps(student, taps) as s_taps:
        teacher_sr, student_sr = teacher(lr), student(lr)
        t_features, s_features = dict(t_taps.features), dict(s_taps.features)
    rows = []
    for term, target in (("L1 to HR", hr), ("output KD (L1 to teacher)", teacher_sr)):
        errors = precision_errors(nn.L1Loss(), student_sr, target)
        rows.append({"term": term, "tap": "output", "needs_float32": needs_float32(errors), **errors})
    for method in FEATURE_METHODS:
        options = [{"p": 1}, {"p": 2}] if method == "fakd" else [{}]
        for option in options:
            label = f"{method} p={option['p']}" if option else method
            loss = build_loss(method, option, label=label)
            pairs = list(zip(taps[:-1], taps[1:])) if METHODS[method].consecutive_pairs else [(tap,) for tap in taps]
            for pair in pairs:
                s = tuple(s_features[tap] for tap in pair)
                t = tuple(t_features[tap] for tap in pair)
                half = HalfAffinity(option["p"]) if method == "fakd" else None
                errors = precision_errors(loss, s if len(pair) > 1 else s[0], t if len(pair) > 1 else t[0],
                                          half_loss=half)
                rows.append({"term": label, "tap": "+".join(pair), "float32_rule": METHODS[method].float32,
                             "needs_float32": needs_float32(errors), **errors})
    return rows


def print_tables(steps: list[dict], precision: list[dict]) -> None:
    print("\nseconds per step, best round (ms per part: " + ", ".join(PARTS) + ")")
    print(f"{'threads':>7s}  {'variant':10s} {'float32':>8s} {'bfloat16':>9s} {'speed-up':>9s}   parts fp32 | bf16")
    for row in steps:
        if row["precision"] != "float32":
            continue
        other = next(r for r in steps if (r["threads"], r["variant"], r["precision"]) ==
                     (row["threads"], row["variant"], "bfloat16"))
        parts = " ".join(f"{row['parts'][p] * 1e3:5.1f}" for p in PARTS) + " | " + \
            " ".join(f"{other['parts'][p] * 1e3:5.1f}" for p in PARTS)
        print(f"{row['threads']:7d}  {row['variant']:10s} {row['s_per_step']:8.3f} {other['s_per_step']:9.3f} "
              f"{row['s_per_step'] / other['s_per_step']:9.2f}   {parts}")
    print("\nrelative error against float64 (value / gradient)")
    print(f"{'term':26s} {'tap':17s} {'float32':>17s} {'bfloat16':>17s} {'fp32 on bf16 in':>17s} {'input rounding':>17s}"
          "  bf16 good enough")
    for row in precision:
        cells = [f"{row[w]['value']:.1e} / {row[w]['gradient']:.1e}"
                 for w in ("float32", "bfloat16", "float32_on_bfloat16", "input_rounding")]
        print(f"{row['term']:26s} {row['tap']:17s} " + " ".join(f"{cell:>17s}" for cell in cells)
              + f"  {'no' if row['needs_float32'] else 'yes'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu", help="run profile (default cpu)")
    parser.add_argument("--data-root", default=os.environ.get("FAKD_DATA_ROOT"),
                        help="data root with the profile's training sets (default $FAKD_DATA_ROOT)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=4, help="rounds per case; the best counts (default 4)")
    parser.add_argument("--steps", type=int, default=10, help="steps per case and round (default 10)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.threads) < 1 or args.rounds < 1 or args.steps < 1:
        parser.exit(2, "bf16_step: --threads, --rounds and --steps take counts >= 1\n")
    if args.profile.startswith("cpu") and not args.data_root:
        parser.exit(2, "bf16_step: the cpu profile trains on T91 + BSD200: give --data-root DIR or set FAKD_DATA_ROOT\n")
    return args


def child(args) -> int:
    """The measurements, in this (tuned-malloc) process; the result JSON on stdout's last line."""
    import torch

    from fakd.device import cpu_bf16_instructions
    from fakd.train.config import load_run_config

    if not cpu_bf16_instructions():
        print("bf16_step: this CPU has no bfloat16 instructions; nothing to compare", file=sys.stderr)
        return 2
    config = load_run_config(args.profile)
    precision = measure_precision(config, data_root=args.data_root)
    steps = measure_steps(config, threads=args.threads, rounds=args.rounds, steps=args.steps)
    print(json.dumps({"steps": steps, "precision": precision, "bf16_instructions": cpu_bf16_instructions(),
                      "torch": torch.__version__}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    from fakd.malloc import tuned_malloc_env

    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    command = [sys.executable, __file__, "--child", "--profile", args.profile, "--data-root", args.data_root,
               "--rounds", str(args.rounds), "--steps", str(args.steps), "--threads", *map(str, args.threads)]
    result = subprocess.run(command, env=tuned_malloc_env(), stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        return result.returncode
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print_tables(measured["steps"], measured["precision"])
    output = {"benchmark": "bf16_step", "date": datetime.now(timezone.utc).isoformat(timespec="minutes"),
              "profile": args.profile, "rounds": args.rounds, "steps_per_round": args.steps, "threads": args.threads,
              "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "cpu": platform.processor()},
              "uptime_before": uptime_before,
              "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
              "note": "a shared, loaded machine: absolute times are noisy; the cases are interleaved, so ratios hold",
              **measured}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(output, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
