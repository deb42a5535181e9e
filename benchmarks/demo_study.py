"""`make study` as a newcomer runs it: a fresh clone, `make install`, then the demo study; wall time per step.

The clone goes into a temporary folder with nothing beside it (no ``../shared/data``), and the
environment loses ``FAKD_DATA_ROOT``, thread and allocator variables, ``PYTHONPATH`` and
``VIRTUAL_ENV``, so ``make study`` picks the demo profile exactly as on a fresh machine. The study's own
lines (``study: step i/n NAME ... started/ended ... after S s``, one line per student run with its
seconds) give the table; each output line is also stamped with the seconds since ``make study``
started, so a commit older than those lines still gets its steps timed (by the arrival of its
``study: TITLE: STATUS`` lines). The load average is sampled every 10 s during the run.

    python benchmarks/demo_study.py                          # HEAD of this checkout (commit first)
    python benchmarks/demo_study.py --commit main --json benchmarks/results/demo_study_main.json
    python benchmarks/demo_study.py --profile smoke --json /tmp/smoke_study.json   # quick check of the script

Committed changes only: the clone is of this checkout's repository at ``--commit``. Target (issue 22):
the study (after set-up) within 10 minutes on a 2-core machine. Writes the JSON and the full log
(``<json stem>.log``) to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "demo_study.json"
TARGET_S = 600.0
REMOVED = ("FAKD_DATA_ROOT", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_MMAP_MAX_",
           "MALLOC_TRIM_THRESHOLD_", "PYTHONPATH", "VIRTUAL_ENV", "FAKD_SCHEDULER", "FAKD_PRETRAINED_DIR")
STEP_END = re.compile(r"study: step \d+/\d+ (\S+) ended \S+ after ([\d.]+) s: (.*)")
OLD_STEP = re.compile(r"study: (.+?): (done|reused|FAILED|\d+ failed.*?)(?: \((.*)\))?$")
POINT = re.compile(r"\[\s*\d+/\d+\] (done|reused|FAILED)\s+(\S+) \(([\d.]+) s")
REPORT = re.compile(r"study: report took ([\d.]+) s")


class LoadSampler:
    """The 1-minute load average every ``every`` seconds while the study runs."""

    def __init__(self, every: float = 10.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.samples.append(round(os.getloadavg()[0], 2))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def clean_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in REMOVED}


def timed_run(command: list[str], *, cwd: Path, env: dict, log, echo: bool) -> tuple[float, int, list[tuple]]:
    """Run ``command``; every output line stamped with the seconds since it started (to ``log``)."""
    started = time.monotonic()
    lines = []
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    for line in process.stdout:
        stamp = time.monotonic() - started
        for part in line.rstrip("\n").split("\r"):  # progress bars redraw with carriage returns
            if part.strip():
                lines.append((round(stamp, 1), part))
                log.write(f"{stamp:7.1f} {part}\n")
                if echo:
                    print(f"{stamp:7.1f} {part}", flush=True)
    code = process.wait()
    return time.monotonic() - started, code, lines


def parse_steps(lines: list[tuple]) -> tuple[list[dict], list[dict]]:
    """(steps with seconds and status, student runs with seconds) from the study's output. Without the
    step lines (an older commit) a step's time is the time since the previous step's line."""
    steps, points, older, previous = [], [], [], None
    for stamp, line in lines:
        if match := STEP_END.search(line):
            steps.append({"step": match[1], "seconds": float(match[2]), "status": match[3]})
        elif match := REPORT.search(line):
            steps.append({"step": "report", "seconds": float(match[1]), "status": "written"})
        elif match := POINT.search(line):
            points.append({"run": match[2], "seconds": float(match[3]), "status": match[1]})
        elif (match := OLD_STEP.search(line)) and previous is not None:
            older.append({"step": match[1], "seconds": round(stamp - previous, 1), "status": match[2],
                          "timed_by": "line arrival"})
        if line.startswith("study: ") and not line.startswith("study: step "):
            previous = stamp
    return (steps or older), points


def print_table(result: dict) -> None:
    print(f"\n`make study` ({result['profile']}) from a fresh clone of {result['commit']} ({result['date']}, {result['cores']} cores; "
          f"load average {result['load']['before'][0]:.1f} before, mean {result['load']['mean']:.1f}, "
          f"max {result['load']['max']:.1f} during)")
    print(f"{'part':38s} {'seconds':>8s}  status")
    print(f"{'make install (venv)':38s} {result['install_s']:8.1f}")
    for step in result["steps"]:
        print(f"{step['step']:38s} {step['seconds']:8.1f}  {step['status']}")
    for point in result["points"]:
        print(f"  {'student ' + point['run']:36s} {point['seconds']:8.1f}  {point['status']}")
    print(f"{'make study (after set-up)':38s} {result['study_s']:8.1f}  exit {result['study_exit']}")
    print(f"{'total':38s} {result['install_s'] + result['study_s']:8.1f}")
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"target: the study within {TARGET_S:.0f} s after set-up: {verdict}; git status clean afterwards: "
          f"{result['clean_afterwards']}")


def measure(args, folder: Path, log) -> dict:
    clone = folder / "fakd"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", args.commit], cwd=clone, check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True, capture_output=True,
                            text=True).stdout.strip()
    env = clean_environment()
    print(f"demo_study: {commit} cloned into {clone}; make install ...", flush=True)
    install_s, code, _ = timed_run(["make", "install"], cwd=clone, env=env, log=log, echo=False)
    if code != 0:
        raise SystemExit(f"demo_study: make install failed (exit {code}); see {args.json.with_suffix('.log')}")
    print(f"demo_study: make install {install_s:.0f} s; make study ...", flush=True)
    before = os.getloadavg()
    with LoadSampler() as sampler:
        study_s, study_exit, lines = timed_run(["make", "study", *([f"PROFILE={args.profile}"] if args.profile else [])],
                                               cwd=clone, env=env, log=log, echo=args.echo)
    samples = sampler.samples or [os.getloadavg()[0]]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout
    steps, points = parse_steps(lines)
    return {"date": date.today().isoformat(), "commit": commit, "cores": os.cpu_count(),
            "profile": args.profile or "make's choice (demo without a data root)",
            "install_s": round(install_s, 1), "study_s": round(study_s, 1), "study_exit": study_exit,
            "steps": steps, "points": points, "target_s": TARGET_S,
            "target_met": study_exit == 0 and study_s <= TARGET_S, "clean_afterwards": status.strip() == "",
            "load": {"before": before, "after": os.getloadavg(), "mean": sum(samples) / len(samples),
                     "max": max(samples), "samples": samples}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commit", default="HEAD", help="commit of this checkout's repository to clone (default HEAD)")
    parser.add_argument("--profile", default=None, help="PROFILE for make (default: make's own choice, the demo)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    parser.add_argument("--echo", action="store_true", help="print the study's output as it comes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (its path is printed)")
    args = parser.parse_args(argv)
    if subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{args.commit}^{{commit}}"], cwd=REPO,
                      capture_output=True).returncode != 0:
        parser.exit(2, f"demo_study: not a commit here: {args.commit}\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="fakd-demo-study-"))
    try:
        with open(args.json.with_suffix(".log"), "w") as log:
            result = measure(args, folder, log)
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(folder)], check=False)
    print_table(result)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json} and {args.json.with_suffix('.log')}" + (f"; clone kept in {folder}" if args.keep else ""))
    return 0 if result["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
