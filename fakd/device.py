"""Device choice: CUDA when available, else CPU; an explicit name overrides. What `--amp` runs in on it."""

import torch

from fakd.errors import FakdError


def resolve_device(name: str | None = None) -> torch.device:
    """Return the torch device for ``name`` ("auto"/None, "cpu", "cuda", "cuda:1", ...)."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise FakdError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FakdError(f"device {name!r} asked for, but this torch build sees no CUDA device")
    return device


BF16_INSTRUCTIONS = ("amx_bf16", "avx512_bf16")  # native bfloat16 arithmetic on x86 CPUs (torch's cpuinfo)


def cpu_bf16_instructions() -> list[str]:
    """The CPU's native bfloat16 instruction sets among ``BF16_INSTRUCTIONS``; empty when it has none.

    Without them oneDNN emulates bfloat16 by converting to float32, which is slower than float32."""
    capabilities = torch.cpu.get_capabilities()
    return [name for name in BF16_INSTRUCTIONS if capabilities.get(name)]


def autocast_dtype(device: torch.device, *, amp: bool) -> torch.dtype | None:
    """The autocast dtype of a run with ``amp`` on ``device``, or None for float32.

    CUDA: bfloat16 where the GPU has it, else float16 (the trainer adds loss scaling); CPU: bfloat16
    when the CPU has native bfloat16 instructions, else None. Other devices: FakdError."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_bf16_instructions() else None
    raise FakdError(f"--amp runs on CUDA or on a CPU; this run is on {device}")


def describe_autocast(device: torch.device, dtype: torch.dtype | None) -> str:
    """One line saying what ``--amp`` does on ``device`` (``dtype`` from ``autocast_dtype``)."""
    if dtype is None:
        return (f"amp: this CPU has no bfloat16 instructions ({' or '.join(BF16_INSTRUCTIONS)}); "
                "training in float32")
    where = ", ".join(cpu_bf16_instructions()) if device.type == "cpu" else torch.cuda.get_device_name(device)
    scaling = " with loss scaling" if dtype == torch.float16 else ""
    return f"amp: {str(dtype).removeprefix('torch.')} autocast on {device.type} ({where}){scaling}"
