"""Helpers shared by the tests/test_guarantee_*.py files: a tiny checkpoint, images, the CLI in a
real subprocess, and a snapshot of a folder to prove that nothing in it changed."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from fakd.data.image_io import write_image
from fakd.models import build_model
from fakd.zoo.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


def tiny_checkpoint(path: Path, *, scale: int = 2) -> Path:
    """A weights-only fakd checkpoint of a very small EDSR (fast on one thread)."""
    torch.manual_seed(0)
    model = build_model("edsr-baseline", scale=scale, n_resblocks=1, n_feats=4)
    return save_checkpoint({"model_config": dict(model.config), "model_name": "tiny",
                            "model_state": model.state_dict()}, path)


def random_image(path: Path, *, height: int = 20, width: int = 24, seed: int = 0) -> Path:
    image = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if path.suffix.lower() == ".png":
        write_image(path, image)
    else:
        from PIL import Image
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``folder`` (hidden ones included)."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def run_fakd(*args: str, cwd: Path | None = None, timeout: float = 600, **popen) -> subprocess.CompletedProcess:
    """``python -m fakd.cli ARGS`` in a real subprocess with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "fakd.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout, **popen)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str = "") -> str:
    """Exit code 2, one line on stderr starting ``fakd``, no traceback; returns the line."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("fakd ") and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]
    return lines[0]
