"""What a model costs: parameters, Multi-Adds for a 1280×720 output, median CPU latency.

Multi-Adds follow the SR papers' convention (RCAN, CARN, FAKD tables): the multiply-accumulates of
convolutions and matrix products needed to produce one 1280×720 (W×H) output, i.e. for an LR input
of (720 // s) × (1280 // s). torch's ``FlopCounterMode`` counts a multiply-add as 2 FLOPs, so the
count is halved. It runs on a copy of the model on the ``meta`` device: no memory, no arithmetic,
so even the 15.6M-parameter teacher is counted instantly. Element-wise work (ReLU, channel
attention's pooling and scaling) is not counted, as in the papers.

Latency: median wall time of ``repeats`` forward passes (no grad, eval mode) of a fixed
``lr_size``² random LR image after ``warmup`` passes, on the given device (CPU by default).
"""

from __future__ import annotations

import copy
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fakd.models import count_parameters

OUTPUT_SIZE = (720, 1280)  # (H, W) of the output the Multi-Adds are quoted for


def multi_adds(model: nn.Module, *, scale: int, output_size: tuple[int, int] = OUTPUT_SIZE) -> int:
    """Multiply-adds of one forward pass producing ``output_size`` (H, W) at ``scale``."""
    height, width = output_size[0] // scale, output_size[1] // scale
    meta_model = copy.deepcopy(model).to("meta").eval()
    sample = torch.empty(1, 3, height, width, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(sample)
    return counter.get_total_flops() // 2


def median_latency(
    model: nn.Module,
    *,
    lr_size: int = 64,
    warmup: int = 2,
    repeats: int = 5,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> float:
    """Median seconds per forward pass of a ``lr_size``² LR image after ``warmup`` passes."""
    device = torch.device(device)
    model = model.eval().to(device)
    generator = torch.Generator().manual_seed(seed)
    sample = torch.rand(1, 3, lr_size, lr_size, generator=generator).to(device)
    times = []
    with torch.no_grad():
        for index in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(sample)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if index >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_cost(
    model: nn.Module,
    *,
    name: str,
    scale: int,
    lr_size: int = 64,
    warmup: int = 2,
    repeats: int = 5,
    device: torch.device | str = "cpu",
    latency: bool = True,
) -> dict:
    """One row of the cost table: name, params, Multi-Adds (1280×720 output), median latency."""
    row = {
        "model": name,
        "scale": scale,
        "params": count_parameters(model),
        "multi_adds": multi_adds(model, scale=scale),
        "output_size": f"{OUTPUT_SIZE[1]}x{OUTPUT_SIZE[0]}",
        "latency_lr_size": lr_size,
        "latency_s": None,
        "device": str(torch.device(device)),
        "threads": torch.get_num_threads(),
    }
    if latency:
        row["latency_s"] = median_latency(model, lr_size=lr_size, warmup=warmup, repeats=repeats, device=device)
    return row


def onnx_cost(path, *, name: str, scale: int, lr_size: int = 64, warmup: int = 2, repeats: int = 5,
              latency: bool = True) -> dict:
    """The cost row of an exported ONNX model (``fakd export --format onnx``): parameters from its
    initializers, latency under onnxruntime's CPU provider with torch's thread count; no Multi-Adds
    (the graph is not traced by torch)."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    params = sum(int(numpy_helper.to_array(tensor).size) for tensor in graph.graph.initializer)
    row = {"model": name, "scale": scale, "params": params, "multi_adds": None,
           "output_size": f"{OUTPUT_SIZE[1]}x{OUTPUT_SIZE[0]}", "latency_lr_size": lr_size, "latency_s": None,
           "device": "cpu (onnxruntime)", "threads": torch.get_num_threads()}
    if latency:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name_in = session.get_inputs()[0].name
        generator = torch.Generator().manual_seed(0)
        sample = torch.rand(1, 3, lr_size, lr_size, generator=generator).numpy()
        times = []
        for index in range(warmup + repeats):
            start = time.perf_counter()
            session.run(None, {name_in: sample})
            if index >= warmup:
                times.append(time.perf_counter() - start)
        row["latency_s"] = statistics.median(times)
    return row


def cost_ratios(first: dict, second: dict) -> dict:
    """first / second for params, Multi-Adds and latency (e.g. teacher over student)."""
    ratios = {
        "of": f"{first['model']} / {second['model']}",
        "params": first["params"] / second["params"],
        "multi_adds": (first["multi_adds"] / second["multi_adds"]
                       if first["multi_adds"] and second["multi_adds"] else None),
        "latency": None,
    }
    if first.get("latency_s") and second.get("latency_s"):
        ratios["latency"] = first["latency_s"] / second["latency_s"]
    return ratios
