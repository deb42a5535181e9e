"""A training step of an old commit against this checkout's, side by side: seconds per iteration and its parts.

Each case is one real CLI run (``fakd train --role student`` or ``fakd distill --method fakd``, the
profile's settings, ``--iterations`` iterations) per commit, run in a child process whose PYTHONPATH is
that commit's tree (the old one unpacked with ``git archive`` into a temporary folder; the new one is
this checkout, uncommitted edits included), through ``step_parts_driver.py``, which times the parts
of every iteration at torch-level entry points both layouts share (data, teacher forward, student
forward, loss, backward, optimizer, the rest of the step, and everything after the step: logging,
validation, checkpoints). The headline is the issue's measure: seconds per iteration between
iterations ``--window`` from the run's own ``metrics.jsonl``.

Thread settings: ``default`` (no OMP_NUM_THREADS: each commit picks its own count — the case where
the choice matters) and fixed counts (OMP_NUM_THREADS=N for both). Old and new alternate, the order
flipping from case to case and round to round, so load from other processes hits both alike; the
load average is recorded before and after every run. Both use the same teacher file (this checkout's
shipped ``rcan-cpu-teacher-x4``, unless ``--teacher``) and glibc's default allocator (what a user's
CLI run gets).

    python benchmarks/step_parts.py --data-root DATA                       # 6e34bd2 vs this checkout
    python benchmarks/step_parts.py --data-root DATA --rounds 3 --threads default 1 2
    python benchmarks/step_parts.py --profile smoke --iterations 12 --window 4 10 --threads 1  # quick check

Target (issue 24): today's seconds per iteration ≤ the old commit's in every case.
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
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).resolve().parent / "step_parts_driver.py"
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "step_parts.json"
PARTS = ("data", "teacher forward", "student forward", "loss", "backward", "optimizer", "other step", "after step")
CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_MMAP_MAX_",
           "MALLOC_TRIM_THRESHOLD_", "PYTHONPATH")


def _git(*args: str, cwd: Path = REPO) -> str:
    # --no-optional-locks: reading the repository (describe --dirty refreshes the index) must never take
    # index.lock, which another git command running at the same time (a test, the user) may hold
    return subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def _commit(name: str) -> str | None:
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    except subprocess.CalledProcessError:
        return None


def unpack(commit: str, folder: Path) -> Path:
    """The commit's files in ``folder`` (git archive: no worktree bookkeeping to clean up)."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def shipped_teacher(tree: Path) -> Path:
    manifest = json.loads((tree / "fakd" / "pretrained" / "manifest.json").read_text())
    entry = next(model for model in manifest["models"] if model["name"] == "rcan-cpu-teacher-x4") \
        if isinstance(manifest.get("models"), list) else manifest["models"]["rcan-cpu-teacher-x4"]
    return tree / "fakd" / "pretrained" / entry["file"]


def fakd_arguments(command: str, *, args, out: Path) -> list[str]:
    common = ["--config", args.profile, "--set", f"student.iterations={args.iterations}", "--out", str(out),
              "--no-progress"]
    if args.data_root:
        common += ["--data-root", args.data_root]
    if command == "student":
        return ["train", "--role", "student", *common]
    return ["distill", "--teacher", str(args.teacher), "--method", "fakd", *common]


def per_iteration_from_metrics(run_dir: Path, window: tuple[int, int]) -> float | None:
    """(elapsed at the window's end − at its start) / its length, from the run's metrics.jsonl."""
    elapsed = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "elapsed_seconds" in record:
            elapsed[record["iteration"]] = record["elapsed_seconds"]
    start, end = window
    if start not in elapsed or end not in elapsed:
        return None
    return (elapsed[end] - elapsed[start]) / (end - start)


def run_case(tree: Path, command: str, threads: str, *, args, work: Path) -> dict:
    """One CLI run of ``command`` from ``tree`` with the thread setting; its timings and load."""
    out, timings = work / "run", work / "parts.json"
    env = {name: value for name, value in os.environ.items() if name not in CLEARED}
    env["PYTHONPATH"] = str(tree)
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    load_before = os.getloadavg()
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(DRIVER), str(timings), *fakd_arguments(command, args=args, out=out)],
                            cwd=work, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        return {"failed": (result.stderr.strip().splitlines() or ["no output"])[-1], "wall_s": wall}
    driver = json.loads(timings.read_text())
    if Path(driver["fakd_file"]).resolve().parents[1] != tree.resolve():
        raise SystemExit(f"step_parts: fakd was imported from {driver['fakd_file']}, not from {tree}")
    start, end = args.window
    window = [row for key, row in driver["iterations"].items() if start <= int(key) < end]
    parts = {part: statistics.fmean(row[part] for row in window) for part in PARTS}
    choice = [line for line in result.stdout.splitlines() if "torch thread" in line]
    from_metrics = per_iteration_from_metrics(out, args.window)
    hooks = statistics.fmean(row["total"] for row in window)
    return {"s_per_iteration": hooks if from_metrics is None else from_metrics,
            "measured_by": "hooks (no metrics lines at the window's ends)" if from_metrics is None else "metrics.jsonl",
            "s_per_iteration_hooks": hooks, "parts": parts,
            "torch_threads": driver["torch_threads"], "thread_choice": choice[0] if choice else None,
            "wall_s": round(wall, 1), "load_before": load_before, "load_after": os.getloadavg()}


def measure(trees: dict, *, args, work: Path, save) -> list[dict]:
    """Every (round, command, threads) case for both commits, the order flipping from case to case;
    ``save(runs)`` after each run, so an interrupted benchmark keeps what it measured."""
    runs, flip = [], False
    for round_ in range(args.rounds):
        for command in args.commands:
            for threads in args.threads:
                order = ["old", "new"] if not flip else ["new", "old"]
                flip = not flip
                for side in order:
                    folder = work / f"{round_}-{command}-{threads}-{side}"
                    folder.mkdir()
                    run = run_case(trees[side], command, threads, args=args, work=folder)
                    runs.append({"round": round_, "command": command, "threads": threads, "commit": side, **run})
                    save(runs)
                    print(f"  round {round_} {command:7s} threads={threads:7s} {side}: "
                          + (f"{run['s_per_iteration']:.3f} s/it ({run['torch_threads']} threads, load "
                             f"{run['load_before'][0]:.1f})" if "failed" not in run else f"FAILED {run['failed']}"),
                          flush=True)
    return runs


def summarise(runs: list[dict], *, args) -> list[dict]:
    """Per (command, threads): median s/iteration and parts over rounds for each commit, new / old."""
    rows = []
    for command in args.commands:
        for threads in args.threads:
            row = {"command": command, "threads": threads}
            for side in ("old", "new"):
                done = [run for run in runs if (run["command"], run["threads"], run["commit"]) == (command, threads, side)
                        and run.get("s_per_iteration") is not None]
                if not done:
                    continue
                row[side] = {"s_per_iteration": statistics.median(run["s_per_iteration"] for run in done),
                             "parts": {part: statistics.median(run["parts"][part] for run in done) for part in PARTS},
                             "torch_threads": sorted({run["torch_threads"] for run in done})}
            if "old" in row and "new" in row:
                row["new_over_old"] = row["new"]["s_per_iteration"] / row["old"]["s_per_iteration"]
                row["met"] = row["new_over_old"] <= 1.0
            rows.append(row)
    return rows


def print_table(rows: list[dict], *, labels: dict) -> None:
    print(f"\nseconds per iteration {labels['window']} (metrics.jsonl), median over rounds; "
          f"old = {labels['old']}, new = {labels['new']}")
    print(f"{'step':8s} {'threads':8s} {'old':>14s} {'new':>14s} {'new/old':>8s}")
    for row in rows:
        cells = [f"{row[side]['s_per_iteration']:.3f} s ({'/'.join(map(str, row[side]['torch_threads']))}t)"
                 if side in row else "—" for side in ("old", "new")]
        ratio = f"{row['new_over_old']:.2f}" if "new_over_old" in row else "—"
        print(f"{row['command']:8s} {row['threads']:8s} {cells[0]:>14s} {cells[1]:>14s} {ratio:>8s}")
    print(f"\nparts, ms per iteration (hooks; {', '.join(PARTS)})")
    for row in rows:
        for side in ("old", "new"):
            if side in row:
                parts = " ".join(f"{row[side]['parts'][part] * 1000:7.1f}" for part in PARTS)
                print(f"{row['command']:8s} {row['threads']:8s} {side:4s} {parts}")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="6e34bd2", help="the old commit (default 6e34bd2)")
    parser.add_argument("--new", default=None, help="the new commit (default: this checkout as it is)")
    parser.add_argument("--profile", default="cpu", help="config profile of every run (default cpu)")
    parser.add_argument("--data-root", default=os.environ.get("FAKD_DATA_ROOT"),
                        help="data root with the profile's training sets (default $FAKD_DATA_ROOT)")
    parser.add_argument("--commands", nargs="+", choices=("student", "fakd"), default=["student", "fakd"])
    parser.add_argument("--threads", nargs="+", default=["default", "1", "2"],
                        help="'default' (no thread setting) and/or counts for OMP_NUM_THREADS")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--window", type=int, nargs=2, default=[20, 50], metavar=("FROM", "TO"))
    parser.add_argument("--rounds", type=int, default=1, help="repeats of every case (the median is reported)")
    parser.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint for both (default: this "
                        "checkout's shipped rcan-cpu-teacher-x4 file)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    mistakes = [f"--threads takes 'default' or counts ≥ 1, got {value!r}" for value in args.threads
                if value != "default" and not (value.isdigit() and int(value) >= 1)]
    start, end = args.window
    if not 0 <= start < end <= args.iterations or start % 10 or end % 10:
        mistakes.append(f"--window needs multiples of 10 (the metrics lines) within 0..--iterations, got {start} {end}")
    if args.profile == "cpu" and not args.data_root:
        mistakes.append("the cpu profile trains on T91 + BSD200: give --data-root DIR or set FAKD_DATA_ROOT")
    mistakes += [f"not a commit here: {name}" for name in (args.old, args.new) if name and _commit(name) is None]
    if mistakes:
        parser.exit(2, f"step_parts: {mistakes[0]}\n")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="fakd-step-parts-") as temporary:
        work = Path(temporary)
        trees = {"old": unpack(_commit(args.old), work / "old"),
                 "new": unpack(_commit(args.new), work / "new") if args.new else REPO}
        args.teacher = (args.teacher or shipped_teacher(REPO)).resolve()
        labels = {"old": f"{args.old} ({_commit(args.old)[:7]})", "window": f"{args.window[0]}-{args.window[1]}",
                  "new": f"{args.new} ({_commit(args.new)[:7]})" if args.new
                  else f"this checkout ({_git('describe', '--always', '--dirty')})"}
        print(f"step_parts: {labels['old']} vs {labels['new']}, profile {args.profile}, {args.iterations} iterations, "
              f"threads {' '.join(args.threads)}, {args.rounds} round(s); load {os.getloadavg()}", flush=True)
        (work / "runs").mkdir()
        runs = measure(trees, args=args, work=work / "runs",
                       save=lambda runs: write_result(runs, args=args, labels=labels, complete=False))
    rows = write_result(runs, args=args, labels=labels, complete=True)
    print_table(rows, labels=labels)
    print(f"\nwrote {args.json}")
    return 0 if all(row.get("met", True) for row in rows) else 1


def write_result(runs: list[dict], *, args, labels: dict, complete: bool) -> list[dict]:
    """The JSON (rewritten after every run; ``complete`` False until the last): rows, runs, load."""
    rows = summarise(runs, args=args)
    result = {"complete": complete, "date": date.today().isoformat(), "old": labels["old"], "new": labels["new"],
              "profile": args.profile, "iterations": args.iterations, "window": args.window, "teacher": args.teacher.name,
              "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
              "load_average_end": os.getloadavg(), "rows": rows, "runs": runs,
              "target": "new s/iteration <= old in every case"}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    sys.exit(main())
