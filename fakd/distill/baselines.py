"""Feature-distillation losses with one interface: ``loss(student_feat, teacher_feat) -> scalar``.

Each is an ``nn.Module`` so that learnable parts (FitNet's adapter) are parameters of the objective.
The teacher feature is the target and is detached inside every loss.

- ``FeatureAffinityLoss``: FAKD, mean |A_s − A_t| (p=1) or mean (A_s − A_t)² (p=2) of the N×N
  spatial affinities (see ``affinity.py``); channel counts may differ.
- ``FitNetLoss``: mean squared error between features (Romero et al.), with a learnable 1×1 conv
  student→teacher channels when the counts differ.
- ``AttentionTransferLoss``: Zagoruyko & Komodakis: attention = mean over channels of |F|^p (p=2),
  flattened and L2-normalised per image; loss = mean squared difference over B·N (their code's
  ``(at(x) - at(y)).pow(2).mean()``). Channel counts may differ.
- ``FSPLoss``: Yim et al.: G = F1 F2ᵀ / (H·W), the C1×C2 "flow" between two layers; loss = mean
  squared difference of student and teacher G. Takes (first, second) pairs of maps. Student and
  teacher must have equal channel counts (no adapter: it would learn to fake the flow).
- ``ChannelAffinityLoss``: C×C cosine similarities of the channel vectors (each channel's map
  flattened over H·W and L2-normalised); loss = mean |difference| (p=1, like FAKD) or squared (p=2).
  Equal channel counts required.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fakd.distill.affinity import BLOCK_BYTES, NORM_EPS, affinity_loss
from fakd.errors import FakdError


def check_same_shape(first: Tensor, second: Tensor, *, what: str, channels: bool,
                     names: tuple[str, str] = ("student", "teacher")) -> None:
    """The one shape rule of compared feature maps: (B, C, H, W) with equal batch and spatial sizes,
    and equal channel counts when ``channels``; else FakdError naming ``what`` and both shapes."""
    first_shape, second_shape = tuple(first.shape), tuple(second.shape)
    got = f"got {names[0]} {first_shape} and {names[1]} {second_shape}"
    if first.dim() != 4 or second.dim() != 4:
        raise ValueError(f"{what} needs (B, C, H, W) maps, {got}")
    dims = (0, 1, 2, 3) if channels else (0, 2, 3)
    if any(first_shape[d] != second_shape[d] for d in dims):
        need = "shapes" if channels else "batch and spatial sizes"
        raise FakdError(f"{what} needs equal {need} for {names[0]} and {names[1]}, {got}")


def check_order(p: int) -> int:
    """The distance order of the affinity-type losses: 1 (mean |difference|) or 2 (squared)."""
    if isinstance(p, bool) or p not in (1, 2):
        raise FakdError(f"loss order p must be 1 or 2, got {p!r}")
    return p


class FeatureAffinityLoss(nn.Module):
    """FAKD: distance between student and teacher spatial affinities (no N×N matrix built)."""

    def __init__(self, *, p: int = 1, block_bytes: int = BLOCK_BYTES):
        super().__init__()
        self.p = check_order(p)
        self.block_bytes = block_bytes

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        return affinity_loss(student_feat, teacher_feat, self.p, block_bytes=self.block_bytes)


class FitNetLoss(nn.Module):
    """Feature MSE; a 1×1 conv adapter maps student channels to teacher channels if they differ.

    The adapter exists from construction when both channel counts are given; otherwise call
    ``build_adapter`` (``DistillationObjective.prepare`` does) before making the optimiser.
    """

    def __init__(self, *, student_channels: int | None = None, teacher_channels: int | None = None):
        super().__init__()
        self.adapter: nn.Module | None = None
        if student_channels is not None and teacher_channels is not None:
            self.build_adapter(student_channels, teacher_channels)

    def build_adapter(self, student_channels: int, teacher_channels: int) -> None:
        """Create the 1×1 conv adapter (once) if the channel counts differ."""
        if student_channels != teacher_channels and self.adapter is None:
            self.adapter = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        if self.adapter is not None:
            student_feat = self.adapter(student_feat)
        elif student_feat.dim() == 4 and student_feat.shape[1] != teacher_feat.shape[1]:
            raise RuntimeError(f"FitNet: student has {student_feat.shape[1]} channels and teacher "
                               f"{teacher_feat.shape[1]}; give student_channels/teacher_channels or "
                               f"call DistillationObjective.prepare so a 1x1 adapter is built")
        check_same_shape(student_feat, teacher_feat, what="FitNet", channels=True)
        return F.mse_loss(student_feat, teacher_feat.detach().to(student_feat.dtype))


def attention_map(feat: Tensor, p: int = 2) -> Tensor:
    """(B, C, H, W) → (B, H·W): mean over channels of |F|^p, L2-normalised per image."""
    return F.normalize(feat.abs().pow(p).mean(dim=1).flatten(1), dim=1)


class AttentionTransferLoss(nn.Module):
    """Attention transfer: mean squared difference of normalised attention maps."""

    def __init__(self, *, p: int = 2):
        super().__init__()
        self.p = p

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_shape(student_feat, teacher_feat, what="attention transfer", channels=False)
        difference = attention_map(student_feat, self.p) - attention_map(teacher_feat.detach(), self.p)
        return difference.pow(2).mean()


def fsp_matrix(first: Tensor, second: Tensor) -> Tensor:
    """Yim et al.'s flow matrix: (B, C1, H, W), (B, C2, H, W) → (B, C1, C2), divided by H·W."""
    check_same_shape(first, second, what="FSP", channels=False, names=("first map", "second map"))
    positions = first.shape[2] * first.shape[3]
    return torch.bmm(first.flatten(2), second.flatten(2).transpose(1, 2)) / positions


class FSPLoss(nn.Module):
    """FSP: mean squared difference of student and teacher flow matrices between two layers.

    Called as ``loss((student_first, student_second), (teacher_first, teacher_second))``.
    """

    def forward(self, student_pair, teacher_pair) -> Tensor:
        student_first, student_second = student_pair
        teacher_first, teacher_second = (feat.detach() for feat in teacher_pair)
        student_fsp = fsp_matrix(student_first, student_second)
        teacher_fsp = fsp_matrix(teacher_first, teacher_second).to(student_fsp.dtype)
        if student_fsp.shape != teacher_fsp.shape:
            raise FakdError(f"FSP needs equal channel counts for student and teacher, got student "
                            f"flow {tuple(student_fsp.shape)} and teacher {tuple(teacher_fsp.shape)}")
        return (student_fsp - teacher_fsp).pow(2).mean()


def channel_affinity(feat: Tensor) -> Tensor:
    """(B, C, H, W) → (B, C, C): cosine similarities between channels' flattened maps."""
    flat = feat.flatten(2)
    unit = flat / (torch.linalg.vector_norm(flat, dim=2, keepdim=True) + NORM_EPS)
    return torch.bmm(unit, unit.transpose(1, 2))


class ChannelAffinityLoss(nn.Module):
    """Channel affinity: mean |CA_s − CA_t| (p=1) or squared (p=2); equal channel counts."""

    def __init__(self, *, p: int = 1):
        super().__init__()
        self.p = check_order(p)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        check_same_shape(student_feat, teacher_feat, what="channel affinity", channels=True)
        difference = channel_affinity(student_feat) - channel_affinity(teacher_feat.detach())
        return difference.abs().mean() if self.p == 1 else difference.pow(2).mean()
