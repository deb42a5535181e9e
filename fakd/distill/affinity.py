"""FAKD's spatial affinity and its distillation loss, exact and without N×N matrices.

For a feature map F (B, C, H, W): flatten to (B, C, N) with N = H·W, divide every position's
C-vector by its L2 norm (+ 1e-8 outside the square root) and form A = FᵀF, an N×N matrix of cosine
similarities per image. ``spatial_affinity`` builds A for inspection and small maps;
``affinity_loss`` compares student and teacher affinities without ever holding an N×N matrix:

- p=1 (the paper): row blocks of A_s − A_t are formed, summed in absolute value and dropped; the
  backward pass recomputes each block and uses its sign. Only the upper triangle is visited (A is
  symmetric), and one matmul per block gives A_s − A_t directly from [Fs; Ft]ᵀ[Fs; −Ft].
- p=2: the exact identity ‖FsᵀFs − FtᵀFt‖² = ‖FsFsᵀ‖² − 2‖FsFtᵀ‖² + ‖FtFtᵀ‖² from C×C products;
  redone in float64 when the three terms nearly cancel (student close to teacher).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fakd.errors import FakdError

NORM_EPS = 1e-8
GRAM_CANCELLATION_LIMIT = 0.02  # p=2: below this fraction of its terms, redo in float64
BLOCK_BYTES = 32 * 2**20  # memory budget of one (B, rows, columns) block of A_s − A_t


def normalise_positions(feat: Tensor) -> Tensor:
    """(B, C, H, W) → (B, C, N) with every spatial position's C-vector of unit L2 norm."""
    flat = feat.flatten(2)
    # clamp: an all-zero position (ReLU) gets norm 1e-15 instead of 0, so sqrt's gradient stays finite
    norm = flat.square().sum(dim=1, keepdim=True).clamp_min(1e-30).sqrt()
    return flat / (norm + NORM_EPS)


def spatial_affinity(feat: Tensor) -> Tensor:
    """The paper's spatial affinity: (B, C, H, W) → (B, N, N) cosine similarities of positions."""
    _check_map(feat, "feature map")
    unit = normalise_positions(feat)
    return torch.bmm(unit.transpose(1, 2), unit)


def affinity_loss(student_feat: Tensor, teacher_feat: Tensor, p: int = 1, *,
                  block_bytes: int = BLOCK_BYTES) -> Tensor:
    """Mean |A_s − A_t| (p=1) or mean (A_s − A_t)² (p=2) over B·N·N, with no N×N matrix.

    Computed in float32 (or float64 for float64 input) with autocast off. The teacher is the target (detached here); the gradient flows to the student. Channel counts
    may differ; batch size and spatial size must match. ``block_bytes`` bounds the one block of
    A_s − A_t that p=1 holds at a time.
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
    dtype = torch.promote_types(student_feat.dtype, torch.float32)
    with torch.autocast(device_type=student_feat.device.type, enabled=False):
        student = normalise_positions(student_feat.to(dtype))
        teacher = normalise_positions(teacher_feat.detach().to(dtype))
        if p == 2:
            return _GramL2Affinity.apply(student, teacher)
        return _BlockedL1Affinity.apply(student, teacher, block_bytes)


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


def _row_blocks(batch: int, positions: int, itemsize: int, block_bytes: int):
    """Yield (start, stop) row ranges; a block spans columns start..N, within the byte budget."""
    start = 0
    while start < positions:
        columns = positions - start
        rows = max(1, block_bytes // (batch * columns * itemsize))
        stop = min(positions, start + rows)
        yield start, stop
        start = stop


class _BlockedL1Affinity(torch.autograd.Function):
    """Mean |FsᵀFs − FtᵀFt| over B·N·N by row blocks of the upper triangle; grad for Fs only.

    Every block is written into one buffer allocated per pass, so the allocator is not asked for
    (and glibc does not mmap and unmap) a large block at every step. Position-major copies
    (B, N, C) make each block's rows contiguous for the matmuls.
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, block_bytes: int) -> Tensor:
        batch, _, positions = student.shape
        rows_side, columns_side = _stacked(student, teacher)
        blocks = list(_row_blocks(batch, positions, student.element_size(), block_bytes))
        buffer = _block_buffer(student, blocks)
        total = torch.zeros((), dtype=torch.float64, device=student.device)
        for start, stop in blocks:
            diff = _difference_block(rows_side, columns_side, start, stop, buffer).abs_()
            # float32 sums (torch sums pairwise: accurate and fast), accumulated in float64
            total += 2 * diff.sum().double() - diff[:, :, : stop - start].sum().double()
        ctx.save_for_backward(student, teacher)
        ctx.block_bytes = block_bytes
        return (total / (batch * positions * positions)).to(student.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        student, teacher = ctx.saved_tensors
        batch, _, positions = student.shape
        # L = Σ|D|/M with D symmetric ⇒ dL/dFs = (2/M)·Fs·sign(D), assembled block by block:
        # row block I (columns from I's start) feeds grad[I] and, by symmetry, grad[after I].
        rows_side, columns_side = _stacked(student, teacher)
        student_rows = student.transpose(1, 2).contiguous()  # (B, N, Cs)
        blocks = list(_row_blocks(batch, positions, student.element_size(), ctx.block_bytes))
        buffer = _block_buffer(student, blocks)
        grad = torch.zeros_like(student_rows)
        for start, stop in blocks:
            sign = _difference_block(rows_side, columns_side, start, stop, buffer).sign_()
            grad[:, start:stop].baddbmm_(sign, student_rows[:, start:])
            if stop < positions:
                grad[:, stop:].baddbmm_(sign[:, :, stop - start:].transpose(1, 2),
                                        student_rows[:, start:stop])
        grad *= grad_output * (2.0 / (batch * positions * positions))
        return grad.transpose(1, 2), None, None


def _stacked(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """[Fs; Ft] position-major (B, N, Cs+Ct) and [Fs; −Ft] (B, Cs+Ct, N): their product is D."""
    rows_side = torch.cat([student, teacher], dim=1).transpose(1, 2).contiguous()
    return rows_side, torch.cat([student, -teacher], dim=1)


def _block_buffer(like: Tensor, blocks: list[tuple[int, int]]) -> Tensor:
    batch, _, positions = like.shape
    size = max(batch * (stop - start) * (positions - start) for start, stop in blocks)
    return like.new_empty(size)


def _difference_block(rows_side: Tensor, columns_side: Tensor, start: int, stop: int,
                      buffer: Tensor) -> Tensor:
    """Rows start..stop, columns start..N of D = A_s − A_t, written into ``buffer``."""
    batch, _, positions = columns_side.shape
    out = buffer[: batch * (stop - start) * (positions - start)].view(
        batch, stop - start, positions - start)
    return torch.bmm(rows_side[:, start:stop], columns_side[:, :, start:], out=out)
