"""FAKD affinity loss, forward + backward: the naive N×N formulation vs ``affinity_loss`` p=1 and p=2.

Side by side in one process (so the three variants share the allocator environment and the load
from other jobs; they are interleaved round by round): per case (batch B, 64 channels, H×W map)
the median wall time and process CPU time over the repeats after warm-up, and the peak of
allocated tensor bytes above the starting point during one forward + backward (CPU: the torch
profiler's allocation events, summed in time order; CUDA: ``torch.cuda.max_memory_allocated``).

- naive: normalise, bmm to the (B, N, N) affinities of student and teacher, mean |A_s − A_t| (what
  the official FAKD code does). When its memory need — extrapolated from its measured peak at a
  smaller size, which scales with B·N² — exceeds half of the machine's available memory it is not
  run and is reported as infeasible with that need.
- p=1: ``fakd.distill.affinity_loss(p=1)``, exact, cache-sized tiles of the upper triangle, the
  gradient made in the same sweep.
- p=2: ``affinity_loss(p=2)``, the exact Gram identity from C×C products.

The arithmetic floor of p=1 is the FLOPs of the matmuls the exact loss must do — the upper
triangle of A_s − A_t from [Fs; Ft]ᵀ[Fs; −Ft] (B·N(N+1)/2·(Cs+Ct) multiply-adds) and the
gradient Fs·sign(A_s − A_t) (B·N²·Cs) — over this machine's matmul rate, measured here on a
large single-precision matmul (best of 7) with the same thread count; each case reports it
beside p=1.

glibc's allocator matters (``fakd/malloc.py``) and is read at process start, so
``--malloc-tuned`` re-executes this script with the tuned variables (those fakd uses for its own
runs) and ``--both-allocators`` runs it twice in child processes (glibc defaults, then tuned).

    python benchmarks/affinity.py                              # this process's allocator
    python benchmarks/affinity.py --both-allocators --json benchmarks/results/affinity.json
    python benchmarks/affinity.py --cases 2x24 --repeats 2     # quick check
    python benchmarks/affinity.py --malloc-tuned --sweep       # scaling: B 1, 24² … 256² positions, + plot
    python benchmarks/affinity.py --cases 16x48 --block-bytes 262144,1048576,4194304   # p=1 tile sizes

One torch thread by default: on this 2-core machine shared with other jobs, every parallel region
of a 2-thread run waits for a descheduled thread (~15 ms each), which swamps the comparison.

Targets (issue 13), checked in the output: at the paper's size (B 16, 48×48) p=1 takes ≤ 0.5× the
naive time and ≤ 0.2× its extra memory; p=2 is ≥ 20× faster than naive; the 256×256 B 1 case
runs within 2 GiB.
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

import torch

from fakd.device import resolve_device
from fakd.distill import affinity_loss, spatial_affinity
from fakd.malloc import TUNED_MALLOC_VARIABLES, malloc_is_tuned, tuned_malloc_env, untuned_malloc_env

CHANNELS = 64
DEFAULT_CASES = "16x24,16x48,16x96,1x256"
SWEEP_CASES = "1x24,1x32,1x48,1x64,1x96,1x128,1x192,1x256"
PAPER_CASE = "16x48"
VARIANTS = ("naive", "p1", "p2")
RESULTS = Path(__file__).resolve().parent / "results"
GiB = 2**30


def naive_l1(student, teacher):
    """The official formulation: full N×N affinities, mean absolute difference."""
    return (spatial_affinity(student) - spatial_affinity(teacher)).abs().mean()


def loss_functions(block_sizes: list[int]) -> dict:
    """naive, p1, p2, and p1 at each extra tile budget (``p1@<bytes>``)."""
    losses = {
        "naive": naive_l1,
        "p1": lambda student, teacher: affinity_loss(student, teacher, 1),
        "p2": lambda student, teacher: affinity_loss(student, teacher, 2),
    }
    for size in block_sizes:
        losses[f"p1@{size}"] = lambda student, teacher, size=size: affinity_loss(
            student, teacher, 1, block_bytes=size)
    return losses


def p1_flops(batch: int, channels: int, positions: int) -> int:
    """FLOPs of the matmuls exact p=1 must do, forward + backward (Cs = Ct = ``channels``)."""
    upper_triangle = batch * positions * (positions + 1) // 2 * (2 * channels)  # A_s − A_t
    gradient = batch * positions * positions * channels  # Fs·sign(A_s − A_t)
    return 2 * (upper_triangle + gradient)


def matmul_rate(device: torch.device, *, size: int = 2048, repeats: int = 7) -> float:
    """This machine's float32 matmul FLOP/s: the best of ``repeats`` size³ products after one warm-up
    (the best, so that the floor is a bound and not the luck of a disturbed round)."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    out = torch.empty(size, size, device=device)
    times = []
    for index in range(repeats + 1):
        synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        synchronize(device)
        if index:
            times.append(time.perf_counter() - start)
    return 2 * size**3 / min(times)


def allocator_environment() -> dict:
    """What decides how freed memory is kept: glibc variables, a preloaded allocator."""
    settings = {name: os.environ[name] for name in (*TUNED_MALLOC_VARIABLES, "LD_PRELOAD", "MALLOC_CONF")
                if name in os.environ}
    label = "tuned glibc (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=64 GiB)" if malloc_is_tuned() \
        else ("custom" if settings else "glibc defaults")
    return {"label": label, "tuned": malloc_is_tuned(), "variables": settings}


def available_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else total physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(loss, student, teacher, device) -> tuple[float, float]:
    """Wall and process-CPU seconds of one forward + backward."""
    student.grad = None
    synchronize(device)
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    loss(student, teacher).backward()
    synchronize(device)
    return time.perf_counter() - wall_start, time.process_time() - cpu_start


def peak_extra_bytes(loss, student, teacher, device) -> int:
    """Peak allocated tensor bytes above the level before one forward + backward."""
    student.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        loss(student, teacher).backward()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        loss(student, teacher).backward()
    events = sorted((event.start_ns(), event.nbytes()) for event in prof.profiler.kineto_results.events()
                    if event.name() == "[memory]")
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


def parse_case(text: str) -> tuple[int, int]:
    batch, size = text.lower().split("x")
    return int(batch), int(size)


def measure(cases: list[str], losses: dict, *, repeats: int, warmup: int, device: torch.device,
            headroom: float, rate: float) -> dict:
    """Rows of {case, variant, median_s, median_cpu_s, peak_extra_bytes | infeasible need}."""
    rows = []
    naive_bytes_per_entry = None  # naive peak / (B·N²), from the largest case measured so far
    for case in cases:
        batch, size = parse_case(case)
        positions = size * size
        torch.manual_seed(0)
        student = torch.randn(batch, CHANNELS, size, size, device=device, requires_grad=True)
        teacher = torch.randn(batch, CHANNELS, size, size, device=device)
        skipped = {}
        if naive_bytes_per_entry is not None and "naive" in losses:
            need = int(naive_bytes_per_entry * batch * positions**2)
            if need > headroom * available_bytes():
                skipped["naive"] = need
        # big maps: fewer rounds (the naive size is already skipped there)
        case_repeats, case_warmup = (repeats, warmup) if batch * positions**2 <= 16 * 48**4 else (3, 0)
        runnable = {name: loss for name, loss in losses.items() if name not in skipped}
        times = time_interleaved(runnable, student, teacher, device, repeats=case_repeats, warmup=case_warmup)
        for name in losses:
            row = {"case": case, "batch": batch, "channels": CHANNELS, "size": size, "positions": positions,
                   "variant": name}
            if name in skipped:
                row.update(infeasible=True, need_bytes=skipped[name],
                           reason=f"naive needs ~{skipped[name] / GiB:.1f} GiB (B·N² × "
                                  f"{naive_bytes_per_entry:.1f} bytes measured), more than "
                                  f"{headroom:.0%} of the {available_bytes() / GiB:.1f} GiB available")
            else:
                walls, cpus = times[name]
                row.update(infeasible=False, median_s=statistics.median(walls), median_cpu_s=statistics.median(cpus),
                           times_s=walls, peak_extra_bytes=peak_extra_bytes(losses[name], student, teacher, device),
                           repeats=case_repeats, warmup=case_warmup)
                if name == "naive":
                    naive_bytes_per_entry = row["peak_extra_bytes"] / (batch * positions**2)
                if name.startswith("p1"):
                    row["flops"] = p1_flops(batch, CHANNELS, positions)
                    row["floor_s"] = row["flops"] / rate
            rows.append(row)
            print(format_row(row), flush=True)
    return {"matmul_gflops": rate / 1e9, "rows": rows, "ratios": ratios(rows), "targets": targets(rows)}


def time_interleaved(losses: dict, student, teacher, device, *, repeats: int, warmup: int) -> dict:
    """{name: (wall seconds, cpu seconds)} per round after warm-up, variants interleaved."""
    times = {name: ([], []) for name in losses}
    for round_index in range(warmup + repeats):
        for name, loss in losses.items():
            wall, cpu = run_once(loss, student, teacher, device)
            if round_index >= warmup:
                times[name][0].append(wall)
                times[name][1].append(cpu)
    return times


def ratios(rows: list[dict]) -> list[dict]:
    """ours / naive time and memory per case (where naive ran), and p=1's time over its floor."""
    by_case: dict[str, dict] = {}
    for row in rows:
        by_case.setdefault(row["case"], {})[row["variant"]] = row
    result = []
    for case, variants in by_case.items():
        naive = variants.get("naive")
        for name, ours in variants.items():
            if name == "naive" or ours["infeasible"]:
                continue
            entry = {"case": case, "variant": name}
            if naive and not naive["infeasible"]:
                entry.update(time_ratio=ours["median_s"] / naive["median_s"],
                             cpu_time_ratio=ours["median_cpu_s"] / naive["median_cpu_s"],
                             memory_ratio=ours["peak_extra_bytes"] / max(1, naive["peak_extra_bytes"]))
            if "floor_s" in ours:
                entry["over_floor"] = ours["median_s"] / ours["floor_s"]
            result.append(entry)
    return result


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, each with the measured value and whether it is met."""
    found = {(row["case"], row["variant"]): row for row in rows}
    checks = []
    naive, p1, p2 = (found.get((PAPER_CASE, name)) for name in VARIANTS)
    if naive and p1 and p2 and not naive["infeasible"]:
        time_ratio = p1["median_s"] / naive["median_s"]
        memory_ratio = p1["peak_extra_bytes"] / naive["peak_extra_bytes"]
        speedup = naive["median_s"] / p2["median_s"]
        checks += [
            {"target": "p=1 time ≤ 0.5× naive at 16×64×48×48", "value": time_ratio, "met": time_ratio <= 0.5},
            {"target": "p=1 extra memory ≤ 0.2× naive at 16×64×48×48", "value": memory_ratio, "met": memory_ratio <= 0.2},
            {"target": "p=2 ≥ 20× faster than naive at 16×64×48×48", "value": speedup, "met": speedup >= 20},
        ]
    for name in ("p1", "p2"):
        row = found.get(("1x256", name))
        if row and not row["infeasible"]:
            gib = row["peak_extra_bytes"] / GiB
            checks.append({"target": f"{name} at 1×64×256×256 within 2 GiB", "value": gib, "met": gib <= 2})
    return checks


def format_row(row: dict) -> str:
    head = f"{row['case']:>7} {row['variant']:>12}"
    if row["infeasible"]:
        return f"{head}  infeasible: {row['reason']}"
    floor = f"  floor {row['floor_s']:.3f} s" if "floor_s" in row else ""
    return (f"{head}  {row['median_s']:9.3f} s  cpu {row['median_cpu_s']:8.3f} s  "
            f"+{row['peak_extra_bytes'] / 2**20:9.1f} MiB{floor}")


def print_report(result: dict) -> None:
    env = result["environment"]
    print(f"\nallocator: {env['allocator']['label']}; device {env['device']}; torch {env['torch']}, "
          f"{env['threads']} threads; load average {env['load_before']} → {env['load_after']}; "
          f"matmul {result['matmul_gflops']:.1f} GFLOP/s")
    print(f"{'case':>7} {'variant':>12}  {'median':>11}  {'cpu':>12}  {'peak extra':>13}")
    for row in result["rows"]:
        print(format_row(row))
    for ratio in result["ratios"]:
        parts = []
        if "time_ratio" in ratio:
            parts.append(f"time {ratio['time_ratio']:.3f}× naive (cpu {ratio['cpu_time_ratio']:.3f}×), "
                         f"memory {ratio['memory_ratio']:.3f}× naive")
        if "over_floor" in ratio:
            parts.append(f"{ratio['over_floor']:.2f}× its floor")
        if parts:
            print(f"{ratio['case']:>7} {ratio['variant']}: " + "; ".join(parts))
    for check in result["targets"]:
        print(f"  [{'met' if check['met'] else 'MISSED'}] {check['target']}: {check['value']:.3f}")


def run_here(args) -> dict:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    environment = {"allocator": allocator_environment(), "device": str(device), "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                   "platform": platform.platform(), "load_before": round(os.getloadavg()[0], 2),
                   "available_gib": round(available_bytes() / GiB, 1)}
    print(f"# allocator: {environment['allocator']['label']}", flush=True)
    rate = matmul_rate(device)
    print(f"# matmul rate: {rate / 1e9:.1f} GFLOP/s ({environment['threads']} threads)", flush=True)
    result = measure(args.cases.split(","), loss_functions(args.block_bytes), repeats=args.repeats,
                     warmup=args.warmup, device=device, headroom=args.headroom, rate=rate)
    environment["load_after"] = round(os.getloadavg()[0], 2)
    return {"environment": environment, **result}


def write_plot(result: dict, path: Path) -> None:
    """Time and peak extra memory against N (log-log) for every variant, p=1's floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    variants = list(dict.fromkeys(row["variant"] for row in result["rows"]))
    for name in variants:
        ran = [row for row in result["rows"] if row["variant"] == name and not row["infeasible"]]
        positions = [row["positions"] for row in ran]
        time_axis.plot(positions, [row["median_s"] for row in ran], "o-", label=name)
        memory_axis.plot(positions, [row["peak_extra_bytes"] / 2**20 for row in ran], "o-", label=name)
        needs = [row for row in result["rows"] if row["variant"] == name and row["infeasible"]]
        if needs:
            memory_axis.plot([row["positions"] for row in needs], [row["need_bytes"] / 2**20 for row in needs],
                             "o:", mfc="none", color=memory_axis.lines[-1].get_color(),
                             label=f"{name}: extrapolated need, not run")
        if name == "p1":
            time_axis.plot(positions, [row["floor_s"] for row in ran], "k--", lw=1,
                           label=f"p1 floor (matmul FLOPs / {result['matmul_gflops']:.0f} GFLOP/s)")
    batches = sorted({row["batch"] for row in result["rows"]})
    env = result["environment"]
    for axis, label in ((time_axis, "forward + backward, median s"), (memory_axis, "peak extra memory, MiB")):
        axis.set(xscale="log", yscale="log", xlabel="positions N = H·W", ylabel=label)
        axis.grid(True, which="both", alpha=0.3)
    time_axis.legend(fontsize=8)
    memory_axis.legend(fontsize=8)
    fig.suptitle(f"FAKD affinity loss, batch {','.join(map(str, batches))}, {CHANNELS} channels; "
                 f"{env['device']}, {env['threads']} thread(s), {env['allocator']['label'].split(' (')[0]} "
                 f"(naive stops where it would need more than half the memory)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_both(args, argv: list[str]) -> dict:
    """Two child processes, glibc defaults then tuned; each compares the variants internally."""
    results = {}
    for label, env in (("default", untuned_malloc_env()), ("tuned", tuned_malloc_env())):
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "result.json"
            child = [sys.executable, str(Path(__file__).resolve()), *argv, "--child-json", str(out)]
            print(f"## allocator {label}", flush=True)
            subprocess.run(child, env=env, check=True)
            results[label] = json.loads(out.read_text())
    return {"allocators": results}


def parse_args(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=None,
                        help=f"BxS list, B batch, S×S map (default {DEFAULT_CASES}; with --sweep {SWEEP_CASES})")
    parser.add_argument("--sweep", action="store_true",
                        help="the scaling sweep: cases " + SWEEP_CASES + " and a plot (--plot)")
    parser.add_argument("--plot", type=Path, default=None,
                        help="write the time/memory-against-N plot here (default with --sweep: "
                             "benchmarks/results/affinity_scaling.png)")
    parser.add_argument("--block-bytes", type=lambda text: [int(part) for part in text.split(",")], default=[],
                        help="extra p=1 variants at these tile budgets, comma-separated bytes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a machine shared with other jobs, OpenMP's "
                             "waits for a descheduled second thread dominate; 0 = torch's choice)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda")
    parser.add_argument("--headroom", type=float, default=0.5,
                        help="run naive only if its need is below this fraction of available memory")
    parser.add_argument("--json", type=Path, help="write the results here")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--malloc-tuned", action="store_true", help="re-run this process with the tuned glibc settings")
    group.add_argument("--both-allocators", action="store_true", help="run with glibc defaults and tuned, side by side")
    parser.add_argument("--child-json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cases = args.cases or (SWEEP_CASES if args.sweep else DEFAULT_CASES)
    if args.sweep and args.plot is None:
        args.plot = RESULTS / "affinity_scaling.png"
    if args.plot and args.both_allocators:
        parser.error("--plot draws one allocator's run: use it without --both-allocators")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.malloc_tuned and not malloc_is_tuned():
        os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], tuned_malloc_env())
    if args.both_allocators:
        child_argv = [a for a in argv if a != "--both-allocators"]
        if "--json" in child_argv:
            index = child_argv.index("--json")
            del child_argv[index:index + 2]
        result = run_both(args, child_argv)
        for label, part in result["allocators"].items():
            print(f"\n=== {label} allocator ===")
            print_report(part)
        print_side_by_side(result["allocators"])
    else:
        result = run_here(args)
        if args.child_json:
            args.child_json.write_text(json.dumps(result, indent=1))
            return
        print_report(result)
        if args.plot:
            write_plot(result, args.plot)
            print(f"wrote {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")


def print_side_by_side(parts: dict) -> None:
    labels = list(parts)
    print(f"\n{'case':>7} {'variant':>12}  " + "  ".join(f"{label + ' time':>13} {label + ' mem':>12}" for label in labels))
    keys = [(row["case"], row["variant"]) for row in parts[labels[0]]["rows"]]
    for case, variant in keys:
        cells = []
        for label in labels:
            row = next(r for r in parts[label]["rows"] if (r["case"], r["variant"]) == (case, variant))
            cells.append(f"{'infeasible':>13} {'':>12}" if row["infeasible"] else
                         f"{row['median_s']:11.3f} s {row['peak_extra_bytes'] / 2**20:8.1f} MiB")
        print(f"{case:>7} {variant:>12}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
