"""One run on 1 vs N processes (torchrun + DistributedDataParallel): throughput and the loss curves.

Each variant is a real ``torchrun --standalone --nproc-per-node N -m fakd distill`` of a profile's
distilled student (default: the ``cpu`` profile's FAKD student with its teacher preset at fresh
weights, on the embedded photographs, global batch = the profile's), one torch thread per process on
the CPU (``--device cuda``: one GPU per process). Variants run one after the other, in interleaved
rounds, so load from other processes hits them alike. The time per step is taken from rank 0's
``metrics.jsonl`` (``elapsed_seconds`` logged every iteration; validation and checkpoints only at the
end), so process start-up, data loading and the first ``--warmup`` steps are left out; throughput is
global-batch samples per second, and the ratio is against 1 process. The loss curve of each variant
is compared with the 1-process run's (the largest relative difference of any logged value).

    python benchmarks/ddp.py                                      # cpu profile, 1 vs 2 processes, CPU
    python benchmarks/ddp.py --rounds 3 --iterations 40 --json benchmarks/results/ddp.json
    python benchmarks/ddp.py --profile smoke --rounds 1 --iterations 6 --warmup 2   # quick check
    python benchmarks/ddp.py --device cuda --processes 1 2 4 8 --profile paper --set data.train_sets=[DIV2K] \\
        --data-root DATA                                          # a GPU machine: 1 vs N GPUs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "ddp.json"


def teacher_checkpoint(config, folder: Path) -> Path:
    """A checkpoint of the profile's teacher preset (fresh weights: the step's cost does not depend on them)."""
    import torch

    from fakd.train.setup import build_role_model
    from fakd.zoo.checkpoint import save_checkpoint

    torch.manual_seed(1)
    teacher = build_role_model(config, "teacher")
    return save_checkpoint({"model_config": dict(teacher.config), "model_name": "benchmark teacher",
                            "model_state": teacher.state_dict()}, folder / "teacher.pt")


def run_overrides(args) -> list[str]:
    """The run's settings: log every step, validate and checkpoint only at the end, no cache."""
    return [f"student.iterations={args.iterations}", "log_every=1", f"validate_every={args.iterations}",
            f"checkpoint_every={args.iterations}", "teacher_cache=false", "threads=0", *args.set]


def launch(processes: int, args, *, teacher: Path, out: Path) -> dict:
    """One torchrun job; returns its wall time, the load around it and rank 0's metrics log."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               "-m", "fakd", "distill", "--teacher", str(teacher), "--method", "fakd", "--config", args.profile,
               "--device", args.device, "--no-progress", "--out", str(out)]
    for item in run_overrides(args):
        command += ["--set", item]
    if args.data_root:
        command += ["--data-root", args.data_root]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    load_before, start = os.getloadavg(), time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{processes} process(es) failed:\n{result.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {"wall_s": wall, "load_before": load_before, "load_after": os.getloadavg(), "records": records}


def step_seconds(records: list[dict], warmup: int) -> list[float]:
    """Seconds of each step after the first ``warmup`` ones, from the elapsed time logged every step
    (the last step, which also validates and writes the checkpoints, left out)."""
    elapsed = [record["elapsed_seconds"] for record in records if "loss" in record]
    return [later - earlier for earlier, later in zip(elapsed[warmup:-2], elapsed[warmup + 1:-1])]


def curve_difference(reference: list[dict], other: list[dict]) -> dict:
    """The largest relative difference of any logged loss value (loss, terms, shares) of two runs, where
    it is (value, iteration), and the largest at the first iteration (before rounding compounds)."""
    largest = {"relative": 0.0, "value": None, "iteration": None, "first_iteration": 0.0}
    for one, two in zip(reference, other):
        for key, value in one.items():
            if key in ("iteration", "lr", "elapsed_seconds", "val_psnr") or key not in two:
                continue
            relative = abs(two[key] - value) / max(abs(value), 1e-12)
            if one["iteration"] == 1:
                largest["first_iteration"] = max(largest["first_iteration"], relative)
            if relative > largest["relative"]:
                largest.update(relative=relative, value=key, iteration=one["iteration"])
    return largest


def measure(args) -> dict:
    """Every variant in ``--rounds`` interleaved rounds; per variant its step times and runs."""
    from fakd.train.config import load_run_config

    config = load_run_config(args.profile, args.set)
    runs = {processes: [] for processes in args.processes}
    with tempfile.TemporaryDirectory(prefix="fakd-ddp-") as temporary:
        folder = Path(temporary)
        teacher = teacher_checkpoint(config, folder)
        for round_index in range(args.rounds):
            for processes in args.processes:
                out = folder / f"run-{processes}-{round_index}"
                runs[processes].append(launch(processes, args, teacher=teacher, out=out))
    return {"config": config, "runs": runs}


def rows_of(measured: dict, args) -> list[dict]:
    batch = measured["config"].data.batch_size
    reference = measured["runs"][args.processes[0]][0]["records"]
    rows = []
    for processes, runs in measured["runs"].items():
        steps = [seconds for run in runs for seconds in step_seconds(run["records"], args.warmup)]
        median = statistics.median(steps)
        rows.append({"processes": processes, "global_batch": batch, "per_process_batch": batch // processes,
                     "median_s_per_step": median, "samples_per_s": batch / median, "steps_timed": len(steps),
                     "wall_s": [round(run["wall_s"], 1) for run in runs],
                     "load_average": [[round(value, 2) for value in (*run["load_before"], *run["load_after"])]
                                      for run in runs],
                     "loss_difference": max((curve_difference(reference, run["records"]) for run in runs),
                                            key=lambda difference: difference["relative"])})
    base = rows[0]["samples_per_s"]
    for row in rows:
        row["throughput_ratio"] = row["samples_per_s"] / base
    return rows


def print_table(rows: list[dict], header: str) -> None:
    print(header)
    print(f"{'processes':>9s} {'batch/proc':>10s} {'s/step':>8s} {'samples/s':>10s} {'ratio':>6s} "
          f"{'max rel. loss diff':>19s}  load (1/5/15 min before | after each run)")
    for row in rows:
        loads = "; ".join(" ".join(f"{value:.1f}" for value in load[:3]) + " | " +
                          " ".join(f"{value:.1f}" for value in load[3:]) for load in row["load_average"])
        print(f"{row['processes']:9d} {row['per_process_batch']:10d} {row['median_s_per_step']:8.3f} "
              f"{row['samples_per_s']:10.1f} {row['throughput_ratio']:6.2f} "
              f"{row['loss_difference']['relative']:19.2e}  {loads}")
    print("max rel. loss diff: the largest relative difference of any logged loss value from the first "
          "1-process run (float rounding, compounding over the steps); at the first step: " +
          ", ".join(f"{row['processes']} processes {row['loss_difference']['first_iteration']:.1e}" for row in rows))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts (first: the baseline)")
    parser.add_argument("--device", default="cpu", help="cpu (gloo, --threads each) or cuda (NCCL, one GPU each)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--iterations", type=int, default=30, help="steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="first steps of each run not timed")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (each runs every variant once)")
    parser.add_argument("--data-root", default=None, help="folder of <Set>/HR (default: the embedded photographs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    if not args.data_root:  # the embedded photographs: 5 images, one held out for validation
        args.set = ["data.train_sets=[skimage-train]", "data.validation_images=1", *args.set]
    return args


def main(argv: list[str] | None = None) -> int:
    import torch

    args = parse_args(sys.argv[1:] if argv is None else argv)
    measured = measure(args)
    rows = rows_of(measured, args)
    config = measured["config"]
    print_table(rows, f"ddp: profile {args.profile}, {config.teacher.model.preset} -> {config.student.model.preset}, "
                      f"FAKD, x{config.scale}, global batch {config.data.batch_size}, LR patch {config.data.patch_size}, "
                      f"{args.device}, {args.threads} thread(s) per process, median over {args.rounds} round(s) x "
                      f"{args.iterations - args.warmup - 2} steps")
    result = {"benchmark": "ddp", "profile": args.profile, "overrides": run_overrides(args), "device": args.device,
              "threads_per_process": args.threads, "torch": torch.__version__, "cores": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d"), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
