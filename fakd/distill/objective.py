"""The training objective for a distilled student, built from plain keyword arguments.

    total = (1 − α)·L1(SR_s, HR) + α·L1(SR_s, SR_t) + Σ_terms (weight / 255) · Σ_pairs loss(student, teacher)

**Weights are in the official code's units.** The FAKD authors train on pixels in [0, 255], so their
two L1 terms are 255× what they are on fakd's [0, 1] images, while feature terms (affinities, ...)
do not depend on the pixel scale. fakd keeps its images and L1 values on [0, 1] and divides every
feature weight by :data:`OFFICIAL_PIXEL_RANGE` instead: the total is the official objective / 255,
so gradients point the same way, each term's share of the total is the official one, and the
student without distillation (only L1 terms) trains exactly as before. FAKD weight 1 is the setting
behind the published table; weight 10 is what the official README writes.

Terms are ``DistillationTerm``s or plain dicts (as read from YAML/JSON)::

    DistillationObjective(alpha=0.5, terms=[
        {"method": "fakd", "weight": 1.0, "student_taps": ["body.2", "body.6", "long_skip"],
         "teacher_taps": ["body.2", "body.6", "long_skip"], "p": 1},
    ])

Keys other than method/weight/student_taps/teacher_taps/name are the loss's options (``p`` for
fakd/at/ca; ``student_channels``/``teacher_channels`` for fitnet). Feature methods: ``fakd`` (the
paper's L1; ``p: 2`` for the squared variant), ``fitnet``, ``at``, ``fsp`` (consecutive tap pairs),
``ca``; what each accepts and weighs by default is its record in ``fakd.distill.methods``. Output
distillation (``kd``) is the α term, not a feature term; ``none`` (the teacher-free student) is α = 0
and no terms — :func:`objective_for` maps method names to these settings.

Under bfloat16 autocast (``--amp``) the terms whose method record says ``float32`` (FAKD, AT, FSP, CA)
are computed with autocast off on float32 copies of their features (``fakd.distill.precision``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch.nn.functional as F
from torch import Tensor, nn

from fakd.distill.baselines import FitNetLoss, check_same_shape
from fakd.distill.methods import METHODS, build_loss, check_methods, check_weight, feature_methods, known_methods
from fakd.distill.precision import in_float32
from fakd.distill.taps import check_tap_pairs
from fakd.errors import FakdError

RESERVED_NAMES = ("total", "l1_hr", "l1_teacher")
OFFICIAL_PIXEL_RANGE = 255.0  # the official code's --rgb_range: the scale feature weights refer to


@dataclass(frozen=True)
class DistillationTerm:
    """One feature-distillation term: a method, its weight, paired tap lists and loss options."""

    method: str
    weight: float
    student_taps: tuple[str, ...]
    teacher_taps: tuple[str, ...]
    options: dict = field(default_factory=dict)
    name: str | None = None

    @classmethod
    def from_dict(cls, config: Mapping) -> "DistillationTerm":
        """Build from a plain dict; keys beyond the fields go to ``options``."""
        if isinstance(config, DistillationTerm):
            return config
        if not isinstance(config, Mapping):
            raise TypeError(f"a distillation term must be a dict, got {type(config).__name__}")
        missing = [key for key in ("method", "weight", "student_taps", "teacher_taps")
                   if key not in config]
        if missing:
            raise ValueError(f"distillation term {dict(config)} lacks {', '.join(missing)}")
        fields = ("method", "weight", "student_taps", "teacher_taps", "name", "options")
        options = {**config.get("options", {}),
                   **{key: value for key, value in config.items() if key not in fields}}
        return cls(method=config["method"], weight=config["weight"],
                   student_taps=_tap_tuple(config["student_taps"]),
                   teacher_taps=_tap_tuple(config["teacher_taps"]),
                   options=options, name=config.get("name"))

    @property
    def label(self) -> str:
        return self.name or self.method


def _tap_tuple(taps) -> tuple[str, ...]:
    if isinstance(taps, str):
        return (taps,)
    return tuple(taps)


class DistillationObjective(nn.Module):
    """Combined loss; ``forward`` returns ``(total, {name: unweighted value})``.

    The dict has ``l1_hr`` always, ``l1_teacher`` when α > 0, and one entry per term (its label:
    ``name`` or the method), each summed over its tap pairs and not yet multiplied by its weight.
    Term weights are in official units (see the module docstring); :meth:`shares` gives each
    term's fraction of the total. Learnable parts (FitNet adapters) are parameters of this module.
    """

    def __init__(self, *, alpha: float = 0.5, terms: Iterable = ()):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise FakdError(f"alpha (weight of the output-distillation term) must lie in [0, 1], "
                            f"got {alpha!r}")
        self.alpha = float(alpha)
        self.terms = [DistillationTerm.from_dict(term) for term in terms]
        self.losses = nn.ModuleDict()
        for term in self.terms:
            self._check_term(term)
            self.losses[term.label] = nn.ModuleList(
                self._build_loss(term) for _ in self._pairs(term))

    def _check_term(self, term: DistillationTerm) -> None:
        if term.method not in feature_methods():
            hint = {"kd": " (output distillation is the alpha term)",
                    "none": " (no distillation is alpha=0 and no terms)"}.get(term.method, "")
            raise ValueError(f"unknown distillation method {term.method!r}{hint}; feature terms "
                             f"are {', '.join(feature_methods())} (all methods: "
                             f"{', '.join(known_methods())})")
        check_weight(term.weight, where=f"term {term.label!r}: weight")
        check_tap_pairs(term.student_taps, term.teacher_taps, what=f"term {term.label!r}")
        needed = METHODS[term.method].min_tap_pairs
        if len(term.student_taps) < needed:
            raise FakdError(f"term {term.label!r}: method {term.method!r} needs at least "
                            f"{needed} tap pair(s)")
        if term.label in self.losses or term.label in RESERVED_NAMES:
            raise ValueError(f"term name {term.label!r} is used twice or reserved; give each term "
                             f"a distinct 'name'")

    @staticmethod
    def _build_loss(term: DistillationTerm) -> nn.Module:
        return build_loss(term.method, term.options, label=term.label)

    @staticmethod
    def _pairs(term: DistillationTerm) -> list:
        """Tap pairs a term compares: (student, teacher) names, or for FSP consecutive pairs."""
        pairs = list(zip(term.student_taps, term.teacher_taps))
        if METHODS[term.method].consecutive_pairs:
            return list(zip(pairs[:-1], pairs[1:]))
        return pairs

    @property
    def student_taps(self) -> list[str]:
        """Every student tap any term needs, unique, in order."""
        return list(dict.fromkeys(tap for term in self.terms for tap in term.student_taps))

    @property
    def teacher_taps(self) -> list[str]:
        """Every teacher tap any term needs, unique, in order."""
        return list(dict.fromkeys(tap for term in self.terms for tap in term.teacher_taps))

    @property
    def needs_teacher(self) -> bool:
        """Whether the teacher must run at all (output KD or any feature term)."""
        return self.alpha > 0 or bool(self.terms)

    def prepare(self, student_features: Mapping[str, Tensor],
                teacher_features: Mapping[str, Tensor]) -> None:
        """Build FitNet adapters from sample features, then compute every term once on them, so that maps a
        method cannot compare (FSP or CA across widths) are one FakdError before a run writes anything; call
        before creating the optimiser."""
        for term in self.terms:
            for loss, (s_tap, t_tap) in zip(self.losses[term.label], self._pairs(term)):
                if isinstance(loss, FitNetLoss):
                    student, teacher = _feature(student_features, s_tap, "student"), \
                        _feature(teacher_features, t_tap, "teacher")
                    loss.build_adapter(student.shape[1], teacher.shape[1])
                    if loss.adapter is not None:
                        loss.adapter.to(device=student.device, dtype=student.dtype)
        for term in self.terms:  # (the trainer calls this under no_grad, on one image)
            for loss, pair in zip(self.losses[term.label], self._pairs(term)):
                self._pair_loss(term, loss, pair, student_features, teacher_features)

    def forward(self, *, student_sr: Tensor, hr: Tensor, teacher_sr: Tensor | None = None,
                student_features: Mapping[str, Tensor] | None = None,
                teacher_features: Mapping[str, Tensor] | None = None):
        values: dict[str, Tensor] = {"l1_hr": F.l1_loss(student_sr, hr)}
        total = (1 - self.alpha) * values["l1_hr"]
        if self.alpha > 0:
            if teacher_sr is None:
                raise ValueError(f"alpha={self.alpha} asks for output distillation but no "
                                 f"teacher_sr was given")
            values["l1_teacher"] = F.l1_loss(student_sr, teacher_sr.detach())
            total = total + self.alpha * values["l1_teacher"]
        for term in self.terms:
            value = 0
            for loss, pair in zip(self.losses[term.label], self._pairs(term)):
                value = value + self._pair_loss(term, loss, pair, student_features or {},
                                                teacher_features or {})
            values[term.label] = value
            total = total + self.coefficient(term.label) * value
        return total, values

    def coefficient(self, name: str) -> float:
        """What multiplies the unweighted value ``name`` in the total (feature weights / 255)."""
        if name == "l1_hr":
            return 1 - self.alpha
        if name == "l1_teacher":
            return self.alpha
        term = next((term for term in self.terms if term.label == name), None)
        if term is None:
            raise ValueError(f"the objective has no term {name!r}")
        return term.weight / OFFICIAL_PIXEL_RANGE

    def shares(self, values: Mapping[str, float]) -> dict[str, float]:
        """Each term's fraction of the total, ``{"share_<name>": c·v / Σ c·v}`` (they sum to 1).

        ``values`` are the unweighted values ``forward`` returned (floats); the fractions are the
        same as in the official objective on 0–255 pixels, since both differ by one factor.
        """
        parts = {name: self.coefficient(name) * float(value) for name, value in values.items()}
        total = sum(parts.values())
        if not total > 0:
            return {f"share_{name}": float("nan") for name in parts}
        return {f"share_{name}": part / total for name, part in parts.items()}

    def _pair_loss(self, term, loss, pair, student_features, teacher_features) -> Tensor:
        if METHODS[term.method].consecutive_pairs:
            (s_first, t_first), (s_second, t_second) = pair
            student = tuple(_feature(student_features, tap, "student") for tap in (s_first, s_second))
            teacher = tuple(_feature(teacher_features, tap, "teacher") for tap in (t_first, t_second))
            for (s_tap, t_tap), s_feat, t_feat in zip(pair, student, teacher):
                _check_spatial(term, s_tap, t_tap, s_feat, t_feat)
        else:
            s_tap, t_tap = pair
            student = _feature(student_features, s_tap, "student")
            teacher = _feature(teacher_features, t_tap, "teacher")
            _check_spatial(term, s_tap, t_tap, student, teacher)
        return in_float32(loss, student, teacher) if METHODS[term.method].float32 else loss(student, teacher)


def _feature(features: Mapping[str, Tensor], tap: str, owner: str) -> Tensor:
    if tap not in features:
        raise RuntimeError(f"no {owner} feature for tap {tap!r} (have: "
                           f"{', '.join(features) or 'none'}); tap the {owner} with FeatureTaps")
    return features[tap]


def _check_spatial(term, s_tap: str, t_tap: str, student: Tensor, teacher: Tensor) -> None:
    check_same_shape(student, teacher, channels=False,
                     what=f"term {term.label!r} (student tap {s_tap!r}, teacher tap {t_tap!r})")


def objective_for(methods: Iterable[str], *, alpha: float = 0.5, weights: Mapping[str, float] | None = None,
                  options: Mapping[str, Mapping] | None = None, student_taps: Iterable[str] = (),
                  teacher_taps: Iterable[str] = ()) -> DistillationObjective:
    """The objective of ``methods``, the one path from method names to an objective: ``none`` → α = 0
    and no terms; ``kd`` → the α term; each feature method → one term over the paired taps, weighted
    by ``weights[method]`` else its default weight (``fakd.distill.methods``).

    ``weights``/``options`` may only name feature methods (output KD is weighted by ``alpha``).
    """
    methods = check_methods(methods)
    weights, options = dict(weights or {}), dict(options or {})
    for key, given in (("weights", weights), ("options", options)):
        unused = sorted(set(given) - set(feature_methods()))
        if unused:
            raise FakdError(f"distill.{key} names {unused}, which are not feature methods "
                            f"({', '.join(feature_methods())}; output KD is set by distill.alpha)")
    if methods == ["none"]:
        return DistillationObjective(alpha=0.0)
    terms = [DistillationTerm(method=name, weight=float(weights.get(name, METHODS[name].default_weight)),
                              student_taps=tuple(student_taps), teacher_taps=tuple(teacher_taps),
                              options=dict(options.get(name, {})))
             for name in methods if METHODS[name].has_feature_term]
    return DistillationObjective(alpha=alpha, terms=terms)
