"""Build models by preset name or config dict (BasicSR style: config keys = constructor kwargs).

``PRESETS`` maps a name to the keyword arguments of its architecture (everything but ``scale``,
which every call gives). The paper's pairs:

- ``rcan-teacher`` 10 groups × 20 blocks × 64 ch (15.59M params at ×4) → ``rcan-student``
  10 × 6 × 64 (5.17M);
- ``edsr-teacher`` 32 blocks × 256 ch, residual scale 0.1 (43.1M) → ``edsr-baseline``
  16 × 64 (1.52M).

Small pairs that keep RCAN's shape (10 groups, same width for teacher and student, fewer blocks):

- ``rcan-cpu-teacher`` 10 × 6 × 32 / ``rcan-cpu-student`` 10 × 2 × 32: trains in minutes on 2 CPU
  cores (forward + backward + Adam at batch 16, LR patch 24, ×4, 2 threads:
  ≈ 0.3 s / 0.15 s measured);
- ``rcan-cpu-student-narrow`` 10 × 8 × 16: half the teacher's width (no weights to copy; FitNet needs an
  adapter, FSP and CA cannot compare it), its training step as costly as ``rcan-cpu-student``'s (1 thread,
  batch 8, LR 24, ×4, channels-last: 0.238 s vs 0.235 s; 10 × 6 × 16 0.174 s, 10 × 4 × 16 0.136 s; 2026-12-08),
  so the width and the depth students are compared at the same training compute;
- ``rcan-smoke-teacher`` 10 × 2 × 16 / ``rcan-smoke-student`` 10 × 1 × 16: milliseconds, for tests.
"""

import inspect

import torch
from torch import nn

from fakd.errors import FakdError
from fakd.models.edsr import EDSR
from fakd.models.rcan import RCAN

ARCHITECTURES: dict[str, type[nn.Module]] = {"rcan": RCAN, "edsr": EDSR}

PRESETS: dict[str, dict] = {
    "rcan-teacher": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 20, "n_feats": 64},
    "rcan-student": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 6, "n_feats": 64},
    "edsr-teacher": {"arch": "edsr", "n_resblocks": 32, "n_feats": 256, "res_scale": 0.1},
    "edsr-baseline": {"arch": "edsr", "n_resblocks": 16, "n_feats": 64, "res_scale": 1.0},
    "rcan-cpu-teacher": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 6, "n_feats": 32},
    "rcan-cpu-student": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 2, "n_feats": 32},
    "rcan-cpu-student-narrow": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 8, "n_feats": 16},
    "rcan-smoke-teacher": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 2, "n_feats": 16},
    "rcan-smoke-student": {"arch": "rcan", "n_resgroups": 10, "n_resblocks": 1, "n_feats": 16},
}

MAX_MODEL_PARAMETERS = 10**9  # 4 GB of float32 weights (the paper's largest model has 43 M)
MAX_MODEL_INT_OPTION = 10_000  # widths and depths (RCAN 10x20x64 and EDSR 32x256 are far below)


def list_presets() -> list[str]:
    """Names accepted by ``build_model``, in definition order."""
    return list(PRESETS)


def _keyword_names(arch: str) -> list[str]:
    return list(inspect.signature(ARCHITECTURES[arch].__init__).parameters)[1:]


def build_model_from_config(config: dict) -> nn.Module:
    """Build ``config["arch"]`` with the other keys as keyword arguments (a model's ``config``).

    An optional ``"preset"`` key is a label: it is kept on the rebuilt model's config.
    """
    kwargs = dict(config)
    arch = kwargs.pop("arch", None)
    preset = kwargs.pop("preset", None)
    if arch not in ARCHITECTURES:
        raise FakdError(f"unknown architecture {arch!r}: known ones are {sorted(ARCHITECTURES)}")
    valid = _keyword_names(arch)
    unknown = [key for key in kwargs if key not in valid]
    if unknown:
        raise FakdError(f"unknown {arch} option(s) {unknown}: valid ones are {valid}")
    model = ARCHITECTURES[arch](**kwargs)
    if preset is not None:
        model.config["preset"] = preset
    return model


def build_model(name: str, *, scale: int, **overrides) -> nn.Module:
    """Build preset ``name`` at ``scale``; ``overrides`` replace its constructor kwargs."""
    if name not in PRESETS:
        raise FakdError(f"unknown model preset {name!r}: known ones are {list_presets()}")
    config = {**PRESETS[name], "scale": scale}
    valid = [key for key in _keyword_names(config["arch"]) if key != "scale"]
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        raise FakdError(
            f"unknown option(s) {unknown} for preset {name!r}: valid ones are {valid}"
        )
    return build_model_from_config({**config, **overrides, "preset": name})


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def check_model_size(model_config: dict, *, where: str) -> int:
    """Build ``model_config`` on torch's meta device (no memory) and return its parameter count;
    a malformed config or an absurd size (see the MAX_* limits) is a FakdError naming ``where``."""
    for key, value in model_config.items():
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_MODEL_INT_OPTION:
            raise FakdError(f"{where}: {key}={value} is absurdly large (limit {MAX_MODEL_INT_OPTION})")
    try:
        with torch.device("meta"):
            model = build_model_from_config(dict(model_config))
    except FakdError as error:
        raise FakdError(f"{where}: {error}") from None
    except (TypeError, ValueError, RuntimeError, KeyError, AttributeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise FakdError(f"{where}: cannot build the model ({detail})") from None
    parameters = count_parameters(model)
    if parameters > MAX_MODEL_PARAMETERS:
        raise FakdError(f"{where}: {parameters / 1e9:.3g} billion parameters ({parameters * 4 / 2**30:.3g} GiB "
                        f"of weights) is beyond the limit of {MAX_MODEL_PARAMETERS / 1e9:.0f} billion")
    return parameters
