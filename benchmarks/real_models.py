"""Official weights in, students out: how exactly fakd reproduces the official networks, and what ONNX costs.

1. Equivalence per architecture at the papers' sizes, random weights through the inverse conversion
   (``fakd.zoo.official.official_state_dict``), max abs difference in 0-255 units on a 10x20 LR input:
   official RCAN 10x20x64 against spandrel's RCAN; EDSR 32x256 (res_scale 0.1) and the EDSR baseline
   16x64 against EDSR-PyTorch's forward written out below.
2. ONNX (``fakd export --format onnx``): max abs difference to torch, and the median CPU latency of
   torch and onnxruntime on one thread, interleaved, for the paper's student (RCAN 10x6x64) and the cpu
   student (10x2x32), x4, 64x64 LR.

    .venv/bin/python benchmarks/real_models.py --json benchmarks/results/real_models.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fakd.models import build_model
from fakd.train.weights_export import export_weights
from fakd.zoo.checkpoint import load_model_from_checkpoint
from fakd.zoo.official import official_state_dict
from fakd.models.spandrel_import import spandrel_registry


def perturbed(model):
    """Non-zero biases everywhere (torch's default init leaves them small)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def edsr_pytorch_forward(state, lr, *, res_scale, n_resblocks):
    """EDSR-PyTorch's forward on 0-255 pixels from its state-dict layout."""
    def conv(x, name):
        weight = state[f"{name}.weight"]
        return F.conv2d(x, weight, state[f"{name}.bias"], padding=weight.shape[-1] // 2)

    x = conv(conv(lr * 255, "sub_mean"), "head.0")
    res = x
    for block in range(n_resblocks):
        res = res + conv(F.relu(conv(res, f"body.{block}.body.0")), f"body.{block}.body.2") * res_scale
    res = conv(res, f"body.{n_resblocks}") + x
    for index in sorted({int(key.split(".")[2]) for key in state if key.startswith("tail.0.")}):
        res = F.pixel_shuffle(conv(res, f"tail.0.{index}"), 2)
    return conv(conv(res, "tail.1"), "add_mean")  # 0-255


def equivalence(folder: Path) -> list[dict]:
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 10, 20)
    rows = []
    spandrel, registry, _ = spandrel_registry()
    for weights, rcan in (("torch's initialisation", build_model("rcan-teacher", scale=4).eval()),
                          ("+ 0.02 N(0, 1) on every tensor", perturbed(build_model("rcan-teacher", scale=4)))):
        path = folder / "rcan.pt"
        torch.save(official_state_dict(rcan), path)
        reference = spandrel.ModelLoader(registry=registry).load_from_file(path).model.eval()
        with torch.no_grad():
            ours, theirs = load_model_from_checkpoint(path)(lr) * 255, reference(lr.clone()) * 255
        rows.append({"architecture": "official RCAN 10x20x64 x4", "weights": weights, "reference": "spandrel RCAN",
                     "max_abs_0_255": float((ours - theirs).abs().max()), "output_max_abs_0_255": float(theirs.abs().max())})
    for preset, res_scale in (("edsr-teacher", 0.1), ("edsr-baseline", 1.0)):
        model = perturbed(build_model(preset, scale=4))
        state = official_state_dict(model)
        path = folder / f"{preset}.pt"
        torch.save(state, path)
        with torch.no_grad():
            ours = load_model_from_checkpoint(path)(lr) * 255
            theirs = edsr_pytorch_forward(state, lr, res_scale=res_scale, n_resblocks=model.config["n_resblocks"])
        rows.append({"architecture": f"EDSR-PyTorch {preset} x4", "weights": "+ 0.02 N(0, 1) on every tensor",
                     "reference": "EDSR-PyTorch forward written out", "max_abs_0_255": float((ours - theirs).abs().max()),
                     "output_max_abs_0_255": float(theirs.abs().max())})
    return rows


def onnx_rows(folder: Path, *, repeats: int) -> list[dict]:
    import onnxruntime

    rows = []
    for preset in ("rcan-student", "rcan-cpu-student"):
        torch.manual_seed(0)
        model = perturbed(build_model(preset, scale=4))
        out = folder / f"{preset}.onnx"
        result = export_weights(model, fmt="onnx", out=out)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        session = onnxruntime.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
        sample = torch.rand(1, 3, 64, 64)
        runs = {"torch": lambda: model(sample), "onnxruntime": lambda: session.run(None, {"lr": sample.numpy()})}
        times = {name: [] for name in runs}
        with torch.no_grad():
            for _ in range(2):
                for run in runs.values():
                    run()
            for _ in range(repeats):  # interleaved: both see the same load
                for name, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) for name, values in times.items()}
        rows.append({"model": preset, "onnx_max_abs_difference": result["max_abs_difference"],
                     "torch_s": medians["torch"], "onnxruntime_s": medians["onnxruntime"],
                     "torch_over_onnxruntime": medians["torch"] / medians["onnxruntime"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        equal = equivalence(Path(folder))
        onnx = onnx_rows(Path(folder), repeats=args.repeats)
    for row in equal:
        print(f"{row['architecture']:30s} {row['weights']:31s} vs {row['reference']:33s} max abs "
              f"{row['max_abs_0_255']:.2e} of outputs up to {row['output_max_abs_0_255']:.0f} (0-255)")
    for row in onnx:
        print(f"{row['model']:18s} ONNX max abs {row['onnx_max_abs_difference']:.2e}; latency 64x64 x4, 1 thread: "
              f"torch {row['torch_s'] * 1000:.1f} ms, onnxruntime {row['onnxruntime_s'] * 1000:.1f} ms "
              f"(torch/ort {row['torch_over_onnxruntime']:.2f})")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"equivalence": equal, "onnx": onnx, "loadavg": load,
                                         "torch": torch.__version__, "repeats": args.repeats}, indent=2) + "\n")


if __name__ == "__main__":
    main()
