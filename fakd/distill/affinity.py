"""FAKD's spatial affinity and its distillation loss, exact and without N×N matrices.

For a feature map F (B, C, H, W): flatten to (B, C, N) with N = H·W, divide every position's
C-vector by its L2 norm (+ 1e-8 outside the square root) and form A = FᵀF, an N×N matrix of cosine
similarities per image. ``spatial_affinity`` builds A for inspection and small maps;
``affinity_loss`` compares student and teacher affinities without ever holding an N×N matrix:

- p=1 (the paper): square tiles of A_s − A_t over the upper triangle (A is symmetric) are formed
  by one matmul each, from [Fs; Ft]ᵀ[Fs; −Ft], summed in absolute value and dropped; when the
  student needs a gradient it is accumulated in the same sweep from each tile's sign, so every
  matmul the exact loss needs is done once and the backward pass only scales it.
- p=2: the exact identity ‖FsᵀFs − FtᵀFt‖² = ‖FsFsᵀ‖² − 2‖FsFtᵀ‖² + ‖FtFtᵀ‖² from C×C products;
  redone in float64 when the three terms nearly cancel (student close to teacher).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from fakd.errors import FakdError

NORM_EPS = 1e-8
GRAM_CANCELLATION_LIMIT = 0.02  # p=2: below this fraction of its terms, redo in float64
# p=1 tiles of A_s − A_t, (B, t, t): the largest square within BLOCK_BYTES, at most TILE_SIDE_LIMIT
# a side; the fastest of those measured at B 16 and B 1 (benchmarks/README.md, tile sizes)
BLOCK_BYTES = 4 * 2**20
TILE_SIDE_LIMIT = 512


def normalise_positions(feat: Tensor) -> Tensor:
    """(B, C, H, W) → (B, C, N) with every spatial position's C-vector of unit L2 norm."""
    flat = feat.flatten(2)
    # clamp: an all-zero position (ReLU) gets norm 1e-15 instead of 0, so sqrt's gradient stays finite
    norm = flat.square().sum(dim=1, keepdim=True).clamp_min(1e-30).sqrt()
    # times the reciprocal, not divided: the same to an ulp, and its backward is ~1.6x faster
    return flat * (norm + NORM_EPS).reciprocal()


def spatial_affinity(feat: Tensor) -> Tensor:
    """The paper's spatial affinity: (B, C, H, W) → (B, N, N) cosine similarities of positions."""
    _check_map(feat, "feature map")
    unit = normalise_positions(feat)
    return torch.bmm(unit.transpose(1, 2), unit)


def affinity_loss(student_feat: Tensor, teacher_feat: Tensor, p: int = 1, *,
                  block_bytes: int = BLOCK_BYTES, compute_dtype: torch.dtype | None = None) -> Tensor:
    """Mean |A_s − A_t| (p=1) or mean (A_s − A_t)² (p=2) over B·N·N, with no N×N matrix.

    Computed in float32 (or float64 for float64 input) with autocast off; ``compute_dtype`` forces
    another dtype — bfloat16 only to measure what half precision would cost (``fakd.distill.precision``:
    too much, docs/precision.md). The teacher is the
    target (detached here); the gradient flows to the student. Channel counts may differ; batch
    size and spatial size must match. ``block_bytes`` bounds the one tile of A_s − A_t that p=1
    holds at a time. p=1 makes the student's gradient during the forward pass whenever autograd
    records (grad mode on, student requiring grad): evaluate under ``torch.no_grad()`` when no
    backward follows, or that work is wasted.
    """
    _check_map(student_feat, "student feature map")
    _check_map(teacher_feat, "teacher feature map")
    s_shape, t_shape = tuple(student_feat.shape), tuple(teacher_feat.shape)
    if s_shape[0] != t_shape[0] or s_shape[2:] != t_shape[2:]:
        raise FakdError(f"affinity needs the same batch size and spatial size for student and "
                        f"teacher, got student {s_shape} and teacher {t_shape}")
    if p not in (1, 2):
        raise FakdError(f"affinity loss order p must be 1 or 2, got {p!r}")
    # at least float32 and outside autocast: sums over B·N² terms are hopeless in half precision
    dtype = compute_dtype or torch.promote_types(student_feat.dtype, torch.float32)
    with torch.autocast(device_type=student_feat.device.type, enabled=False):
        student = normalise_positions(student_feat.to(dtype))
        teacher = normalise_positions(teacher_feat.detach().to(dtype))
        if p == 2:
            return _GramL2Affinity.apply(student, teacher)
        with_grad = torch.is_grad_enabled() and student.requires_grad
        return _BlockedL1Affinity.apply(student, teacher, block_bytes, with_grad)


def _check_map(feat: Tensor, what: str) -> None:
    if not isinstance(feat, Tensor) or feat.dim() != 4:
        shape = tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__
        raise FakdError(f"{what} must be a (B, C, H, W) tensor, got {shape}")


class _GramL2Affinity(torch.autograd.Function):
    """‖ŜᵀŜ − T̂ᵀT̂‖²/M via ‖ŜŜᵀ‖² − 2‖ŜT̂ᵀ‖² + ‖T̂T̂ᵀ‖²; grad for Ŝ only.

    The three terms nearly cancel once the student follows the teacher, and float32 Gram entries
    then lose the result's digits; when the result is below ``GRAM_CANCELLATION_LIMIT`` of the
    terms' sum, the products are redone in float64 (about 2x the cost, still only C×C×N).
    dL/dŜ = (4/M)·(ŜŜᵀ·Ŝ − ŜT̂ᵀ·T̂): one matmul of the stacked [ŜŜᵀ, −ŜT̂ᵀ] and [Ŝ; T̂].
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor) -> Tensor:
        batch, channels, positions = student.shape
        for dtype in (student.dtype, torch.float64):
            stacked = torch.cat([student, teacher], dim=1).to(dtype)  # (B, Cs+Ct, N)
            grams = torch.bmm(stacked[:, :channels], stacked.transpose(1, 2))  # [ŜŜᵀ, ŜT̂ᵀ]
            t_part = stacked[:, channels:]
            self_t = torch.bmm(t_part, t_part.transpose(1, 2)).double().square().sum()
            self_s = grams[:, :, :channels].double().square().sum()
            cross = grams[:, :, channels:].double().square().sum()
            total = self_s - 2 * cross + self_t
            if total >= GRAM_CANCELLATION_LIMIT * (self_s + 2 * cross + self_t):
                break
        ctx.save_for_backward(stacked, grams)
        ctx.scale = batch * positions * positions
        return (total / ctx.scale).to(student.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        stacked, grams = ctx.saved_tensors
        channels = grams.shape[1]
        grams = grams.clone()
        grams[:, :, channels:].neg_()
        grad = torch.bmm(grams, stacked)
        grad *= grad_output.to(grad.dtype) * (4.0 / ctx.scale)
        return grad.to(grad_output.dtype), None


def _tile_spans(batch: int, positions: int, itemsize: int, block_bytes: int) -> list[tuple[int, int]]:
    """(start, stop) of the square tiles' edges: B·t²·itemsize ≤ block_bytes, 1 ≤ t ≤ TILE_SIDE_LIMIT."""
    side = max(1, min(TILE_SIDE_LIMIT, math.isqrt(block_bytes // (batch * itemsize))))
    return [(start, min(positions, start + side)) for start in range(0, positions, side)]


class _BlockedL1Affinity(torch.autograd.Function):
    """Mean |FsᵀFs − FtᵀFt| over B·N·N by square tiles of the upper triangle; grad for Fs only.

    D = A_s − A_t is symmetric, so only tiles (I, J ≥ I) are formed, each by one matmul of
    [Fs; Ft]ᵀ[Fs; −Ft] into one reused buffer small enough to stay in cache while it is summed
    in absolute value and turned into its sign. When the student needs a gradient, it is made in
    the same sweep: dL/dFs = (2/M)·Fs·sign(D), tile (I, J) adding sign·Fs[J] to rows I and, by
    symmetry, signᵀ·Fs[I] to rows J. The forward thus does all the matmuls the exact loss needs,
    once each (no block is recomputed), holds only a (B, N, Cs) gradient, and backward scales it.
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, block_bytes: int, with_grad: bool) -> Tensor:
        batch, channels, positions = student.shape
        rows_side, columns_side = _position_major(student, teacher)
        student_rows = rows_side[:, :, :channels]  # (B, N, Cs), a view
        grad = student.new_zeros(batch, positions, channels) if with_grad else None
        spans = _tile_spans(batch, positions, student.element_size(), block_bytes)
        side = spans[0][1] - spans[0][0]
        buffer, scratch = student.new_empty(2, batch * side * side)
        total = torch.zeros((), dtype=torch.float64, device=student.device)
        for index, (r0, r1) in enumerate(spans):
            for c0, c1 in spans[index:]:
                diff = buffer[: batch * (r1 - r0) * (c1 - c0)].view(batch, r1 - r0, c1 - c0)
                torch.bmm(rows_side[:, r0:r1], columns_side[:, c0:c1].transpose(1, 2), out=diff)
                # torch's sum is pairwise (accurate); off-diagonal tiles stand for their mirror too
                magnitude = torch.abs(diff, out=scratch[: diff.numel()].view_as(diff)).sum()
                total += magnitude.double() * (1 if c0 == r0 else 2)
                if with_grad:
                    _add_tile_gradient(grad, diff.sign_(), student_rows, (r0, r1), (c0, c1))
        scale = batch * positions * positions
        ctx.save_for_backward(grad.mul_(2.0 / scale) if with_grad else None)
        return (total / scale).to(student.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        (grad,) = ctx.saved_tensors  # present: without a gradient wanted there is no backward
        return (grad * grad_output).transpose(1, 2), None, None, None


def _add_tile_gradient(grad: Tensor, sign: Tensor, student_rows: Tensor, rows: tuple[int, int],
                       columns: tuple[int, int]) -> None:
    """grad[rows] += sign·Fs[columns]; for an off-diagonal tile also grad[columns] += signᵀ·Fs[rows]."""
    (r0, r1), (c0, c1) = rows, columns
    grad[:, r0:r1].baddbmm_(sign, student_rows[:, c0:c1])
    if c0 != r0:
        grad[:, c0:c1].baddbmm_(sign.transpose(1, 2), student_rows[:, r0:r1])


def _position_major(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """[Fs; Ft] and [Fs; −Ft] position-major, (B, N, Cs+Ct) each: D = first · secondᵀ."""
    batch, channels, positions = student.shape
    rows_side = student.new_empty(batch, positions, channels + teacher.shape[1])
    rows_side[:, :, :channels].copy_(student.transpose(1, 2))
    rows_side[:, :, channels:].copy_(teacher.transpose(1, 2))
    columns_side = rows_side.clone()
    columns_side[:, :, channels:].neg_()
    return rows_side, columns_side
