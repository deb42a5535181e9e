"""FAKD's spatial affinity and its distillation loss, exact and without N×N matrices.

For a feature map F (B, C, H, W): flatten to (B, C, N) with N = H·W, divide every position's
C-vector by its L2 norm (+ 1e-8 outside the square root) and form A = FᵀF, an N×N matrix of cosine
similarities per image. ``spatial_affinity`` builds A for inspection and small maps;
``affinity_loss`` compares student and teacher affinities without ever holding an N×N matrix:

- p=1 (the paper): row blocks of A_s − A_t are formed, summed in absolute value and dropped; the
  backward pass recomputes each block and uses its sign. Only the upper triangle is visited (A is
  symmetric), and one matmul per block gives A_s − A_t directly from [Fs; Ft]ᵀ[Fs; −Ft].
- p=2: the exact identity ‖FsᵀFs − FtᵀFt‖² = ‖FsFsᵀ‖² − 2‖FsFtᵀ‖² + ‖FtFtᵀ‖² from C×C products,
  in float64 because the three terms nearly cancel when student and teacher agree.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fakd.errors import FakdError

NORM_EPS = 1e-8
BLOCK_BYTES = 32 * 2**20  # memory budget of one (B, rows, columns) block of A_s − A_t


def normalise_positions(feat: Tensor) -> Tensor:
    """(B, C, H, W) → (B, C, N) with every spatial position's C-vector of unit L2 norm."""
    flat = feat.flatten(2)
    return flat / (torch.linalg.vector_norm(flat, dim=1, keepdim=True) + NORM_EPS)


def spatial_affinity(feat: Tensor) -> Tensor:
    """The paper's spatial affinity: (B, C, H, W) → (B, N, N) cosine similarities of positions."""
    _check_map(feat, "feature map")
    unit = normalise_positions(feat)
    return torch.bmm(unit.transpose(1, 2), unit)


def affinity_loss(student_feat: Tensor, teacher_feat: Tensor, p: int = 1, *,
                  block_bytes: int = BLOCK_BYTES) -> Tensor:
    """Mean |A_s − A_t| (p=1) or mean (A_s − A_t)² (p=2) over B·N·N, with no N×N matrix.

    The teacher is the target (detached here); the gradient flows to the student. Channel counts
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
    teacher_feat = teacher_feat.detach().to(student_feat.dtype)
    student = normalise_positions(student_feat)
    teacher = normalise_positions(teacher_feat)
    if p == 2:
        return _gram_l2(student, teacher)
    return _BlockedL1Affinity.apply(student, teacher, block_bytes)


def _check_map(feat: Tensor, what: str) -> None:
    if not isinstance(feat, Tensor) or feat.dim() != 4:
        shape = tuple(feat.shape) if isinstance(feat, Tensor) else type(feat).__name__
        raise FakdError(f"{what} must be a (B, C, H, W) tensor, got {shape}")


def _gram_l2(student: Tensor, teacher: Tensor) -> Tensor:
    """Exact mean (A_s − A_t)² from C×C Gram products (normalised (B, C, N) inputs)."""
    batch, _, positions = student.shape
    s64, t64 = student.double(), teacher.double()
    self_s = torch.bmm(s64, s64.transpose(1, 2)).square().sum()
    cross = torch.bmm(s64, t64.transpose(1, 2)).square().sum()
    self_t = torch.bmm(t64, t64.transpose(1, 2)).square().sum()
    total = self_s - 2 * cross + self_t
    return (total / (batch * positions * positions)).to(student.dtype)


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
    (and glibc does not mmap and unmap) a large block at every step.
    """

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, block_bytes: int) -> Tensor:
        batch, _, positions = student.shape
        left, right = _stacked(student, teacher)
        blocks = list(_row_blocks(batch, positions, student.element_size(), block_bytes))
        buffer = _block_buffer(student, blocks)
        total = torch.zeros((), dtype=torch.float64, device=student.device)
        for start, stop in blocks:
            diff = _difference_block(left, right, start, stop, buffer).abs_()
            rows = stop - start
            total += 2 * diff.sum(dtype=torch.float64) - diff[:, :, :rows].sum(dtype=torch.float64)
        ctx.save_for_backward(student, teacher)
        ctx.block_bytes = block_bytes
        return (total / (batch * positions * positions)).to(student.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        student, teacher = ctx.saved_tensors
        batch, _, positions = student.shape
        # L = Σ|D|/M with D symmetric ⇒ dL/dFs = (2/M)·Fs·sign(D), assembled block by block:
        # row block I (columns from I's start) feeds grad[:, I] and, by symmetry, grad[:, after I].
        left, right = _stacked(student, teacher)
        blocks = list(_row_blocks(batch, positions, student.element_size(), ctx.block_bytes))
        buffer = _block_buffer(student, blocks)
        grad = torch.zeros_like(student)
        for start, stop in blocks:
            sign = _difference_block(left, right, start, stop, buffer).sign_()
            rows = stop - start
            grad[:, :, start:stop].baddbmm_(student[:, :, start:], sign.transpose(1, 2))
            if stop < positions:
                grad[:, :, stop:].baddbmm_(student[:, :, start:stop], sign[:, :, rows:])
        grad *= grad_output * (2.0 / (batch * positions * positions))
        return grad, None, None


def _stacked(student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
    """[Fs; Ft] and [Fs; −Ft]: one matmul of their blocks gives FsᵀFs − FtᵀFt directly."""
    return torch.cat([student, teacher], dim=1), torch.cat([student, -teacher], dim=1)


def _block_buffer(like: Tensor, blocks: list[tuple[int, int]]) -> Tensor:
    batch, _, positions = like.shape
    size = max(batch * (stop - start) * (positions - start) for start, stop in blocks)
    return like.new_empty(size)


def _difference_block(left: Tensor, right: Tensor, start: int, stop: int, buffer: Tensor) -> Tensor:
    """Rows start..stop, columns start..N of A_s − A_t, written into ``buffer``."""
    batch, _, positions = left.shape
    out = buffer[: batch * (stop - start) * (positions - start)].view(
        batch, stop - start, positions - start)
    return torch.bmm(left[:, :, start:stop].transpose(1, 2), right[:, :, start:], out=out)
