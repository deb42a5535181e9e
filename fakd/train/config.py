"""Run configuration: plain dataclasses, profiles stored as YAML, dotted ``--set`` overrides.

A run is described by one :class:`RunConfig`. It is built from the dataclass defaults, then a
profile (``smoke``, ``cpu``, ``paper``: ``fakd/presets/<name>.yaml``) or a user's YAML/JSON file
(which may name the profile it starts from with a top-level ``profile:`` key, default ``cpu``),
then ``--set key=value`` overrides as a user types them (``student.iterations=500``,
``distill.methods=[fakd,kd]``; the value parsed as YAML), then ``updates``: the same dotted keys with
typed values, as the commands' flags and the notebooks' parameters give them (``{"distill.weights.fakd":
100.0}``), assigned through the same path with no text in between. Every key is checked against the
dataclasses: an unknown key or a value of the wrong type is a ``FakdError`` naming it; value ranges
once, by ``fakd.train.config_checks``. Files are read with ``yaml.safe_load`` (JSON is valid YAML);
nothing in a config is executed.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fakd.errors import FakdError
from fakd.train.config_checks import validate_config

PROFILES = ("smoke", "demo", "cpu", "cpu-x2", "cpu-bf16", "paper")
DEFAULT_PROFILE = "cpu"


@dataclass
class ModelSettings:
    """A model preset from ``fakd.models`` plus keyword overrides for its builder."""

    preset: str = "rcan-cpu-student"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class RoleSettings:
    """How one role (teacher or student) is trained: its model, length, optimiser and schedule.

    ``milestones`` are fractions of ``iterations`` at which the learning rate is multiplied by
    ``gamma`` (multistep), so changing the length keeps the schedule's shape; ``cosine`` decays
    from ``lr`` to ``min_lr`` over the run. ``init`` (student only): ``scratch`` (random, as the paper),
    ``teacher`` (the teacher's weights, its first blocks of each group) or ``teacher-spaced`` (evenly spaced
    blocks); see ``fakd.models.inherit``.
    """

    model: ModelSettings = field(default_factory=ModelSettings)
    iterations: int = 1000
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "multistep"
    milestones: list[float] = field(default_factory=lambda: [0.5])
    gamma: float = 0.5
    min_lr: float = 1e-6
    init: str = "scratch"  # scratch | teacher | teacher-spaced: the student's first weights (fakd.models.inherit)


@dataclass
class DataSettings:
    """Training patches: which HR sets, LR patch size, batch size, validation split, augmentation.

    The validation images (``validation_images`` of them, chosen by name, the same for every seed)
    are held out of the patch pool; model selection uses them and never a test set.
    """

    train_sets: list[str] = field(default_factory=lambda: ["skimage-train"])
    patch_size: int = 24
    batch_size: int = 16
    validation_images: int = 2
    validation_crop: int = 0  # centre-crop validation HR images to this many px per side (0: whole)
    augment: bool = True


@dataclass
class DistillSettings:
    """Distillation terms for the ``distill`` job.

    ``methods``: any of fakd, kd, fitnet, at, fsp, ca, none (combinations allowed; see
    ``fakd.train.distillation``). ``weights``: method → weight (missing ones use
    the method registry ``fakd.distill.methods``). ``alpha``: share of the output-KD term, ``(1 − α)·L1(SR, HR) +
    α·L1(SR, SR_t)``, used by every method but ``none`` (the paper's FAKD includes it). Empty tap
    lists mean the models' default taps.
    ``options``: method → loss options, e.g. ``{fakd: {p: 2}}`` for the squared (Gram) variant.
    """

    methods: list[str] = field(default_factory=lambda: ["fakd"])
    weights: dict[str, float] = field(default_factory=dict)
    alpha: float = 0.5
    student_taps: list[str] = field(default_factory=list)
    teacher_taps: list[str] = field(default_factory=list)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunConfig:
    """Everything that determines a run's result (plus ``device``/``threads``, which may not)."""

    profile: str = DEFAULT_PROFILE
    scale: int = 4
    seed: int = 0
    teacher: RoleSettings = field(default_factory=RoleSettings)
    student: RoleSettings = field(default_factory=RoleSettings)
    data: DataSettings = field(default_factory=DataSettings)
    distill: DistillSettings = field(default_factory=DistillSettings)
    validate_every: int = 250
    checkpoint_every: int = 100
    log_every: int = 10
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    amp: bool = False  # autocast: CUDA bfloat16/float16; CPU bfloat16 where it has the instructions (docs/precision.md)
    compile: bool = False  # torch.compile the trained model (inductor, CPU or CUDA; first steps slow)
    channels_last: bool = False  # channels-last memory layout for student, teacher and batches
    teacher_cache: bool = False  # share the frozen teacher's outputs between runs through a folder (fakd.train.teacher_cache)
    teacher_cache_gb: float = 32.0  # the cache folder's cap (every key): storing stops before it holds more; 0: no cap

    def role(self, name: str) -> RoleSettings:
        """Settings of ``teacher`` or ``student``."""
        if name not in ("teacher", "student"):
            raise ValueError(f"unknown role {name!r}: use teacher or student")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Loading


def load_run_config(source: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), *,
                    updates: Mapping[str, Any] | None = None) -> RunConfig:
    """Build a RunConfig from a profile name or a YAML/JSON file, then apply the user's ``key=value``
    overrides, then ``updates`` (dotted key → typed value), and check it once."""
    source = DEFAULT_PROFILE if source in (None, "") else str(source)
    if source in PROFILES:
        mapping = {"profile": source}
    else:
        mapping = _read_mapping(Path(source))
        mapping.setdefault("profile", DEFAULT_PROFILE)
    profile = mapping["profile"]
    if profile not in PROFILES:
        raise FakdError(f"unknown profile {profile!r} in {source}: use one of {', '.join(PROFILES)}")
    config = RunConfig()
    _apply_mapping(config, profile_mapping(profile), where=f"profile {profile}")
    _apply_mapping(config, mapping, where=source)
    for item in overrides:
        apply_override(config, item)
    for key, value in (updates or {}).items():
        apply_update(config, key, value)
    validate_config(config)
    return config


def config_from_dict(mapping: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from :meth:`RunConfig.to_dict` output (e.g. a checkpoint or run dir)."""
    config = RunConfig()
    _apply_mapping(config, mapping, where="stored config")
    validate_config(config)
    return config


def profile_mapping(name: str) -> dict[str, Any]:
    """The partial mapping stored in ``fakd/presets/<name>.yaml``; a preset with ``base: OTHER`` is OTHER's
    mapping with its own keys merged in (nested sections key by key), so a variant states only what differs."""
    if name not in PROFILES:
        raise FakdError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}")
    text = resources.files("fakd").joinpath("presets", f"{name}.yaml").read_text(encoding="utf-8")
    mapping = yaml.safe_load(text) or {}
    base = mapping.pop("base", None)
    return merged_mapping(profile_mapping(base), mapping) if base is not None else mapping


def merged_mapping(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update``'s keys merged in, nested mappings key by key."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = merged_mapping(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FakdError(
            f"config {str(path)!r} is neither a profile ({', '.join(PROFILES)}) nor a readable file"
        )
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise FakdError(f"config {path} is not valid YAML/JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(mapping, dict):
        raise FakdError(f"config {path} must hold a mapping of settings, got {type(mapping).__name__}")
    return mapping


def apply_override(config: RunConfig, item: str) -> None:
    """Apply one ``dotted.key=value`` a user typed (value parsed as YAML, then ``apply_update``)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise FakdError(f"--set expects key=value, got {item!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    apply_update(config, key, value, raw=text)


def apply_update(config: RunConfig, key: str, value: Any, *, raw: str | None = None) -> None:
    """Set the field at dotted ``key`` to ``value``, checked against its type (a key inside a free-form
    mapping such as ``distill.weights.fakd`` sets that entry); ``raw``: the text a user typed, if any."""
    parts = key.strip().split(".")
    target: Any = config
    for depth, name in enumerate(parts[:-1]):
        owner = target
        target = _child(target, name, ".".join(parts[: depth + 1]))
        if isinstance(target, dict):  # a free-form mapping (model.overrides, weights, options)
            for inner in parts[depth + 1 : -1]:
                target = target.setdefault(inner, {})
                if not isinstance(target, dict):
                    raise FakdError(f"config key {key!r}: {inner!r} is not a mapping")
            target[parts[-1]] = value
            _set_field(owner, name, getattr(owner, name), ".".join(parts[: depth + 1]))  # type check
            return
        if not dataclasses.is_dataclass(target):
            raise FakdError(f"unknown config key {key!r}: {'.'.join(parts[: depth + 1])} has no sub-keys")
    _set_field(target, parts[-1], value, key.strip(), raw=raw)


def _child(target: Any, name: str, where: str) -> Any:
    if dataclasses.is_dataclass(target):
        names = [f.name for f in dataclasses.fields(target)]
        if name not in names:
            raise FakdError(f"unknown config key {where!r}: valid keys here are {', '.join(names)}")
        return getattr(target, name)
    raise FakdError(f"unknown config key {where!r}")


def _apply_mapping(target: Any, mapping: dict[str, Any], *, where: str, prefix: str = "") -> None:
    if not isinstance(mapping, dict):
        raise FakdError(f"{where}: {prefix.rstrip('.') or 'config'} must be a mapping")
    for name, value in mapping.items():
        key = f"{prefix}{name}"
        names = [f.name for f in dataclasses.fields(target)]
        if name not in names:
            raise FakdError(f"{where}: unknown config key {key!r} (valid here: {', '.join(names)})")
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            if isinstance(current, ModelSettings) and isinstance(value, str):
                value = {"preset": value, "overrides": {}}  # `model: rcan-cpu-teacher` shorthand
            _apply_mapping(current, value, where=where, prefix=f"{key}.")
        else:
            _set_field(target, name, value, key, where=where)


def _set_field(target: Any, name: str, value: Any, key: str, *, where: str = "--set", raw: str | None = None) -> None:
    hints = typing.get_type_hints(type(target))
    if name not in hints:
        names = [f.name for f in dataclasses.fields(target)]
        raise FakdError(f"unknown config key {key!r}: valid keys here are {', '.join(names)}")
    if dataclasses.is_dataclass(getattr(target, name)):
        if isinstance(getattr(target, name), ModelSettings) and isinstance(value, str):
            setattr(target, name, ModelSettings(preset=value))
            return
        raise FakdError(f"config key {key!r} is a section; set one of its keys, e.g. {key}.<name>=...")
    setattr(target, name, _coerce(value, hints[name], key, where=where, raw=raw))


def _coerce(value: Any, annotation: Any, key: str, *, where: str, raw: str | None = None) -> Any:
    """``value`` as the field's annotated type (YAML and ``--set`` spellings accepted), else FakdError."""
    origin = typing.get_origin(annotation)
    wrong = FakdError(f"{where}: config key {key!r} expects {_type_name(annotation)}, got {value!r}")
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and value is None:
            return None
        for option in args:
            if option is not type(None):
                try:
                    return _coerce(value, option, key, where=where, raw=raw)
                except FakdError:
                    continue
        raise wrong
    if origin in (list, dict):
        return _coerce_container(value, annotation, key, where=where, wrong=wrong)
    return _coerce_scalar(value, annotation, raw=raw, wrong=wrong)


def _coerce_scalar(value: Any, annotation: Any, *, raw: str | None, wrong: FakdError) -> Any:
    """bool, int (whole floats too), float (numeric strings too: YAML 1.1 reads "1e-4" as text), str."""
    if annotation is bool and isinstance(value, bool):
        return value
    if annotation not in (int, float, str) or (isinstance(value, bool) and annotation is not str):
        raise wrong
    if annotation is int and (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        return int(value)
    if annotation is float and isinstance(value, (int, float)):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise wrong from None
    if annotation is str and isinstance(value, str):
        return value
    if annotation is str and raw is not None:  # --set name=123 for a string field keeps the text
        return raw.strip()
    raise wrong


def _coerce_container(value: Any, annotation: Any, key: str, *, where: str, wrong: FakdError) -> Any:
    """list[T] (a comma-separated string too; None → []) or dict[str, T] (None → {}), items coerced."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        elif value is None:
            value = []
        if not isinstance(value, (list, tuple)):
            raise wrong
        (item_type,) = args or (Any,)
        return [_coerce(item, item_type, f"{key}[{i}]", where=where) for i, item in enumerate(value)]
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise wrong
    _, value_type = args or (Any, Any)
    return {str(k): _coerce(v, value_type, f"{key}.{k}", where=where) for k, v in value.items()}


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def dump_config(config: RunConfig, path: Path) -> None:
    """Write the resolved config as YAML (JSON when ``path`` ends in .json)."""
    mapping = config.to_dict()
    if path.suffix == ".json":
        path.write_text(json.dumps(mapping, indent=2) + "\n", encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
