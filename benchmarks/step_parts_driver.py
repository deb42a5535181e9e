"""One ``fakd`` command with timers on its training iterations, split into parts (run by step_parts.py).

``benchmarks/step_parts.py`` starts this script once per commit and setting, in a child process whose
``PYTHONPATH`` is that commit's tree, so the same timers measure an old and a new package layout. It
hooks only entry points both layouts share:

    data             fakd.data.training.TrainingPatches.batch (a batch of patches; also marks the
                     start of iteration ``i``, its first argument)
    teacher forward  a top-level nn.Module call under no_grad during the step (the frozen teacher)
    student forward  a top-level nn.Module call with gradients during the step (the trained model)
    loss             a top-level call of a module whose class name ends in "Objective" (the losses)
                     (wrappers named in ``TRANSPARENT``, e.g. the trainer's ``StudentLoss`` that
                     DistributedDataParallel wraps, count as not there: their children are top-level)
    backward         torch.autograd.backward (what Tensor.backward calls)
    optimizer        the optimizer's step (torch's global optimizer step hooks; its end ends the step)
    other step       the rest of the step: copies to the device, the finiteness check, zero_grad
    after step       from the optimizer's step to the next batch: scheduler, metrics line, progress
                     bar, validation and checkpoints when due

    python benchmarks/step_parts_driver.py OUT.json train --role student --config cpu --out RUN ...

OUT.json: the torch thread count, where ``fakd`` was imported from, and per iteration its parts and
total (the last iteration has no end and is left out).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

STEP_PARTS = ("data", "teacher forward", "student forward", "loss", "backward", "optimizer")
PARTS = (*STEP_PARTS, "other step", "after step")
TRANSPARENT = ("StudentLoss", "DistributedDataParallel")


class Timeline:
    """Per iteration: the parts' seconds, the time it started and the time its optimizer step ended."""

    def __init__(self) -> None:
        self.iterations: dict[int, dict] = {}
        self.current: dict | None = None
        self.depth = 0

    def begin(self, iteration: int, now: float) -> None:
        previous = self.current
        if previous is not None and previous.get("step_end") is not None:
            previous["after step"] = now - previous["step_end"]
            previous["total"] = now - previous["start"]
        self.current = {"start": now, "step_end": None, **{part: 0.0 for part in STEP_PARTS}}
        self.iterations[iteration] = self.current

    def in_step(self) -> bool:
        return self.current is not None and self.current["step_end"] is None

    def add(self, part: str, seconds: float) -> None:
        if self.in_step():
            self.current[part] += seconds

    def end_step(self, now: float) -> None:
        if self.in_step():
            self.current["step_end"] = now

    def finished(self) -> dict[int, dict]:
        """Iterations with an end, each with ``other step`` (the step's time no hook claimed)."""
        rows = {}
        for iteration, row in self.iterations.items():
            if "total" not in row:
                continue
            step = row["step_end"] - row["start"]
            parts = {part: row[part] for part in STEP_PARTS}
            parts["other step"] = step - sum(parts.values())
            parts["after step"] = row["after step"]
            rows[iteration] = {**parts, "total": row["total"]}
        return rows


def _timed(function, timeline: Timeline, part: str):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timeline.add(part, time.perf_counter() - started)
    return wrapper


def _module_call(original, timeline: Timeline):
    import torch

    def call(module, *args, **kwargs):
        if not timeline.depth and type(module).__name__ in TRANSPARENT:
            return original(module, *args, **kwargs)
        if timeline.depth or not timeline.in_step():
            timeline.depth += 1
            try:
                return original(module, *args, **kwargs)
            finally:
                timeline.depth -= 1
        if type(module).__name__.endswith("Objective"):
            part = "loss"
        else:
            part = "student forward" if torch.is_grad_enabled() else "teacher forward"
        timeline.depth += 1
        started = time.perf_counter()
        try:
            return original(module, *args, **kwargs)
        finally:
            timeline.depth -= 1
            timeline.add(part, time.perf_counter() - started)
    return call


def install(timeline: Timeline) -> None:
    """Put the timers on torch's and fakd's shared entry points (see the module docstring)."""
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    from fakd.data.training import TrainingPatches

    batch = TrainingPatches.batch

    def timed_batch(self, iteration, *args, **kwargs):
        timeline.begin(int(iteration), time.perf_counter())
        started = time.perf_counter()
        result = batch(self, iteration, *args, **kwargs)
        timeline.add("data", time.perf_counter() - started)
        return result

    TrainingPatches.batch = timed_batch
    torch.nn.Module.__call__ = _module_call(torch.nn.Module.__call__, timeline)
    torch.autograd.backward = _timed(torch.autograd.backward, timeline, "backward")
    optimizer_started = []
    register_optimizer_step_pre_hook(lambda *_: optimizer_started.append(time.perf_counter()))

    def after_optimizer(*_):
        now = time.perf_counter()
        timeline.add("optimizer", now - optimizer_started.pop())
        timeline.end_step(now)

    register_optimizer_step_post_hook(after_optimizer)


def main(argv: list[str]) -> int:
    out, fakd_arguments = Path(argv[0]), argv[1:]
    import torch

    import fakd
    from fakd.cli import main as fakd_main

    timeline = Timeline()
    install(timeline)
    code = fakd_main(fakd_arguments)
    out.write_text(json.dumps({
        "exit_code": code, "torch_threads": torch.get_num_threads(), "fakd_file": fakd.__file__,
        "iterations": timeline.finished()}))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
