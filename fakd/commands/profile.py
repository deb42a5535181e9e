"""``fakd profile``: parameters, Multi-Adds (1280×720 output) and median latency of models."""

import argparse
from pathlib import Path

import torch

from fakd.atomic import write_json_atomically
from fakd.commands.common import non_negative_int, positive_int
from fakd.errors import FakdError
from fakd.paths import check_output_file
from fakd.zoo.cost import cost_ratios, model_cost, onnx_cost
from fakd.zoo.named_models import model_from_spec

MAX_LATENCY_SIZE = 4096  # LR side timed; beyond, one pass of a large model needs tens of GB
MAX_PASSES = 1000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="parameters, Multi-Adds and latency of presets or checkpoints",
        description="Cost of one or more models: parameters, Multi-Adds for a 1280x720 output "
        "(torch FlopCounterMode, a multiply-add counted once) and the median latency of a fixed LR "
        "input after warm-up. With two or more models, the ratios of the first to the others.",
    )
    parser.add_argument("--model", action="append", required=True, metavar="PRESET_OR_CKPT",
                        help="a model preset (rcan-teacher, ...), a checkpoint file (fakd, official RCAN/EDSR, "
                        "BasicSR, .safetensors), fakd:<name>, or an ONNX export (.onnx: timed with onnxruntime); "
                        "repeatable")
    parser.add_argument("--scale", type=positive_int, required=True, help="upscaling factor")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the rows as JSON")
    parser.add_argument("--latency-size", type=positive_int, default=64, metavar="PX",
                        help="side of the square LR input timed for latency (default 64)")
    parser.add_argument("--warmup", type=non_negative_int, default=2, help="untimed passes first (default 2)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed passes (default 5; median)")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    parser.add_argument("--device", default="cpu", help="device for the latency (default cpu)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fakd.device import resolve_device

    if args.json is not None:
        check_output_file(args.json, label="--json")  # before the measurement, not after it
    for option, value, limit in (("--latency-size", args.latency_size, MAX_LATENCY_SIZE),
                                 ("--warmup", args.warmup, MAX_PASSES), ("--repeats", args.repeats, MAX_PASSES)):
        if value > limit:
            raise FakdError(f"{option} must be ≤ {limit}, got {value}")
    device = resolve_device(args.device)
    rows = [_onnx_row(spec, args) if spec.endswith(".onnx") else
            model_cost(model, name=name, scale=args.scale, lr_size=args.latency_size, warmup=args.warmup,
                       repeats=args.repeats, device=device, latency=not args.no_latency)
            for spec, (name, model) in ((spec, _torch_model(spec, args.scale)) for spec in args.model)]
    ratios = [cost_ratios(rows[0], other) for other in rows[1:]]
    print(f"cost at x{args.scale}: Multi-Adds for a 1280x720 output; latency: median of {args.repeats} "
          f"passes of a {args.latency_size}x{args.latency_size} LR input on {device} "
          f"({torch.get_num_threads()} torch thread(s))")
    width = max(len(row["model"]) for row in rows)
    print(f"{'model':{width}s}  {'params':>9s}  {'Multi-Adds':>11s}  {'latency':>10s}")
    for row in rows:
        latency = "-" if row["latency_s"] is None else f"{row['latency_s'] * 1000:.1f} ms"
        adds = "-" if row["multi_adds"] is None else f"{row['multi_adds'] / 1e9:.1f}G"
        print(f"{row['model']:{width}s}  {row['params'] / 1e6:8.2f}M  {adds:>11s}  {latency:>10s}")
    for ratio in ratios:
        latency = "-" if ratio["latency"] is None else f"{ratio['latency']:.2f}x"
        adds = "-" if ratio["multi_adds"] is None else f"{ratio['multi_adds']:.2f}x"
        print(f"ratio {ratio['of']}: params {ratio['params']:.2f}x, Multi-Adds {adds}, latency {latency}")
    if args.json is not None:
        write_json_atomically(args.json, {"rows": rows, "ratios": ratios})
    return 0


def _torch_model(spec: str, scale: int):
    """(name, model) of a preset or model file; (file name, None) for an .onnx file (run by onnxruntime)."""
    if spec.endswith(".onnx"):
        if not Path(spec).is_file():
            raise FakdError(f"ONNX model {spec!r} not found")
        return Path(spec).name, None
    return model_from_spec(spec, scale=scale)


def _onnx_row(spec: str, args: argparse.Namespace) -> dict:
    """The cost row of an ONNX export (fakd export --format onnx), timed with onnxruntime on the CPU."""
    try:
        import onnxruntime  # noqa: F401 - checked here for one clear line
    except ModuleNotFoundError:
        raise FakdError("profiling an .onnx model needs onnx and onnxruntime: pip install 'fakd[onnx]'") from None
    try:
        return onnx_cost(spec, name=f"{Path(spec).name} (onnxruntime)", scale=args.scale, lr_size=args.latency_size,
                         warmup=args.warmup, repeats=args.repeats, latency=not args.no_latency)
    except Exception as error:  # onnx/onnxruntime raise their own types for foreign or damaged files
        if isinstance(error, FakdError):
            raise
        detail = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise FakdError(f"{spec!r} is not an ONNX model onnxruntime runs ({detail})") from None
