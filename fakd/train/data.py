"""The engine's view of the data: training patches from a run's config, validation PSNR."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from fakd.data.training import TrainingPatches
from fakd.metrics import evaluate_model
from fakd.train.config import RunConfig


def open_training_patches(config: RunConfig, *, data_root: str | Path | None = None) -> TrainingPatches:
    """``TrainingPatches`` for the run: its sets, scale, LR patch size, seed and validation split."""
    return TrainingPatches(
        list(config.data.train_sets),
        scale=config.scale,
        lr_patch_size=config.data.patch_size,
        data_root=data_root,
        augment=config.data.augment,
        seed=config.seed,
        val_count=config.data.validation_images,
        val_crop=config.data.validation_crop or None,
    )


def validation_psnr(model: nn.Module, validation, *, scale: int, device: torch.device) -> float:
    """Mean Y-channel PSNR of ``model`` over the held-out validation images (border crop = scale)."""
    table = evaluate_model(model, validation, scale=scale, device=device, progress=False)
    return float(table["psnr"].mean())
