"""The student settings a sweep compares besides the KD method: where its weights start and which model it is.

A study may train the same KD methods on students that differ before distillation begins:

- **initialisation** (``init``): from scratch (the paper), or from the teacher's own weights (``teacher``:
  the first blocks of each group; ``teacher-spaced``: evenly spaced blocks — ``fakd.models.inherit``);
- **student model** (``student_model``): the profile's student, or another preset (a narrower student).

Each setting is reported as a block of its own in the paper's layout, with the KD weights chosen on
validation within the setting. Its reference is the student trained the paper's way — the same student
model from scratch without KD — so "gap closed" in every block is against that one student, and rows of
different blocks can be read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fakd.models.registry import PRESETS

SCRATCH = "scratch"
INIT_TEXT = {"teacher": "from teacher", "teacher-spaced": "from teacher, spaced blocks"}
INIT_TITLE = {SCRATCH: "from scratch", "teacher": "initialised from the teacher's weights",
              "teacher-spaced": "initialised from the teacher's weights (evenly spaced blocks)"}


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def model_shape(preset: str) -> str:
    """"10×8×16" (groups × blocks × channels) for an RCAN preset, "16×64" for EDSR, else the name."""
    settings = PRESETS.get(preset)
    if settings is None:
        return preset
    depth = [settings[key] for key in ("n_resgroups", "n_resblocks") if key in settings]
    return "×".join(str(value) for value in [*depth, settings["n_feats"]])


@dataclass(frozen=True, order=True)
class StudentSetting:
    """One initialisation and student model; ``student_model`` "" is the profile's own student."""

    student_model: str = ""
    init: str = SCRATCH

    @property
    def suffix(self) -> str:
        """What a configuration label adds for this setting: "", ", from teacher", ", student 10×8×16", ..."""
        parts = [f"student {model_shape(self.student_model)}"] if self.student_model else []
        parts += [INIT_TEXT[self.init]] if self.init in INIT_TEXT else []
        return "".join(f", {part}" for part in parts)

    @property
    def slug(self) -> str:
        """A file-name part: "" for the paper's setting, else e.g. "-init-teacher", "-rcan-cpu-student-narrow"."""
        parts = [self.student_model] if self.student_model else []
        parts += [f"init-{self.init}"] if self.init != SCRATCH else []
        return "".join(f"-{part}" for part in parts)

    @property
    def title(self) -> str:
        student = f"student {model_shape(self.student_model)}" if self.student_model else "the profile's student"
        return f"{student[0].upper()}{student[1:]}, {INIT_TITLE.get(self.init, self.init)}"

    @property
    def reference(self) -> "StudentSetting":
        """The same student model trained from scratch: the block's reference for gap closed."""
        return StudentSetting(student_model=self.student_model)


def setting_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``init`` (scratch where absent) and ``student_model`` ("" where absent) filled in."""
    table = table.copy()
    table["init"] = [_text(value) or SCRATCH for value in table.get("init", [None] * len(table))]
    table["student_model"] = [_text(value) for value in table.get("student_model", [None] * len(table))]
    return table


def setting_of(row) -> StudentSetting:
    return StudentSetting(student_model=row.student_model, init=row.init)


def settings_in(sweep: pd.DataFrame) -> list[StudentSetting]:
    """The settings the sweep trains, the paper's (profile's student from scratch) first, then by model and init."""
    found = {setting_of(row) for row in sweep.drop_duplicates("run").itertuples()}
    order = [SCRATCH, *INIT_TEXT]
    return sorted(found, key=lambda s: (s.student_model, order.index(s.init) if s.init in order else len(order)))


def setting_runs(sweep: pd.DataFrame, setting: StudentSetting, *, with_reference: bool = True) -> pd.DataFrame:
    """The rows of ``setting`` (and, with ``with_reference``, the no-KD rows of its reference setting)."""
    mine = (sweep["init"] == setting.init) & (sweep["student_model"] == setting.student_model)
    if with_reference and setting != setting.reference:
        reference = setting.reference
        mine |= ((sweep["init"] == reference.init) & (sweep["student_model"] == reference.student_model)
                 & (sweep["method"] == "none"))
    return sweep[mine]
