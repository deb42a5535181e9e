"""A shallower student that starts from its teacher's weights: which teacher tensor each student tensor gets.

The cheapest help a teacher can give is its weights (CSD's issue #9: a student initialised from the
teacher, without KD, scored as well as CSD). Where teacher and student share the architecture, the width
and the scale and differ only in depth, every student tensor has a teacher tensor of the same shape:

- RCAN (G groups of B blocks): ``head``, ``body_tail`` and ``tail`` as they are; in every group, the
  group's last conv (``body.g.body.B``) from the teacher's group's last conv, and the student's B_s
  blocks from B_s of the teacher's B_t blocks by the rule below. Groups must be as many as the
  teacher's.
- EDSR (B blocks): the same with the body's blocks.

Rules for the blocks (``BLOCK_RULES``):

- ``first``: blocks 0 … B_s−1 (what the ``teacher`` init uses: the teacher's own first steps, in order);
- ``spaced``: B_s blocks evenly spaced from the first to the last, i·(B_t−1)/(B_s−1) rounded (halves up).

A student wider or narrower than its teacher cannot take its weights this way: refused with one line.
"""

from __future__ import annotations

import torch
from torch import nn

from fakd.errors import FakdError

BLOCK_RULES = ("first", "spaced")
SAME_SETTINGS = ("arch", "scale", "n_feats", "n_colors", "reduction", "n_resgroups")


def inherited_blocks(*, student_blocks: int, teacher_blocks: int, rule: str) -> list[int]:
    """The teacher block each student block starts from (student block i ← returned[i])."""
    if rule not in BLOCK_RULES:
        raise FakdError(f"unknown block rule {rule!r}: use {', '.join(BLOCK_RULES)}")
    if student_blocks > teacher_blocks:
        raise FakdError(f"the student has more blocks ({student_blocks}) than the teacher ({teacher_blocks}): "
                        "there is no teacher block for every student block")
    if rule == "first" or student_blocks == 1:
        return list(range(student_blocks))
    return [int(i * (teacher_blocks - 1) / (student_blocks - 1) + 0.5) for i in range(student_blocks)]  # halves up


def _check_compatible(student_config: dict, teacher_config: dict) -> None:
    for key in SAME_SETTINGS:
        if key in student_config or key in teacher_config:
            mine, theirs = student_config.get(key), teacher_config.get(key)
            if mine != theirs:
                what = {"n_feats": "width", "arch": "architecture"}.get(key, key)
                raise FakdError(f"the student cannot start from the teacher's weights: its {what} is {mine}, "
                                f"the teacher's {theirs} (only the depth may differ)")


def inheritance_map(*, student: nn.Module, teacher: nn.Module, rule: str) -> dict[str, str]:
    """Student state-dict key → the teacher key it is copied from (every student key, shapes checked)."""
    _check_compatible(student.config, teacher.config)
    arch = student.config["arch"]
    depth_key = "n_resblocks"
    mapping_of_block = dict(enumerate(inherited_blocks(student_blocks=student.config[depth_key],
                                                       teacher_blocks=teacher.config[depth_key], rule=rule)))
    teacher_state = teacher.state_dict()
    mapping = {}
    for key, tensor in student.state_dict().items():
        source = _teacher_key(key.split("."), arch=arch, student_blocks=student.config[depth_key],
                              teacher_blocks=teacher.config[depth_key], block_map=mapping_of_block)
        if source not in teacher_state or teacher_state[source].shape != tensor.shape:
            raise FakdError(f"the student's {key} {tuple(tensor.shape)} has no teacher tensor of that shape "
                            f"({source})")
        mapping[key] = source
    return mapping


def _teacher_key(parts: list[str], *, arch: str, student_blocks: int, teacher_blocks: int,
                 block_map: dict[int, int]) -> str:
    """The teacher key of one student key: the body's block indices renumbered, the rest unchanged."""
    if parts[0] != "body":
        return ".".join(parts)
    if arch == "edsr":  # body.<block>....
        return ".".join(["body", str(block_map[int(parts[1])]), *parts[2:]])
    # rcan: body.<group>.body.<block or the group's last conv at index B>....
    block = int(parts[3])
    teacher_block = teacher_blocks if block == student_blocks else block_map[block]
    return ".".join([*parts[:3], str(teacher_block), *parts[4:]])


@torch.no_grad()
def inherit_teacher_weights(*, student: nn.Module, teacher: nn.Module, rule: str = "first") -> dict[str, str]:
    """Copy the teacher's weights into ``student`` in place by ``rule``; returns the key map used."""
    mapping = inheritance_map(student=student, teacher=teacher, rule=rule)
    teacher_state = teacher.state_dict()
    student.load_state_dict({key: teacher_state[source].detach().clone() for key, source in mapping.items()})
    return mapping
