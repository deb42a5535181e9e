"""Feature capture by dotted module path, as in torchdistill: forward hooks returning {path: tensor}.

``FeatureTaps(model, ["body.2", "body_tail"])`` hooks the named submodules as soon as it is built
and removes the hooks when the ``with`` block ends (or on ``remove()``). Each call of ``model``
starts a fresh ``{name: output}`` dict. The hooks store outputs as they are: a teacher run under
``torch.no_grad()`` gives graph-free tensors, a student run keeps its graph for the losses.

A tapped module that runs twice in one call of ``model`` is an error (the tap would be ambiguous);
tap a module that runs once, or call ``clear()`` between calls if you drive submodules yourself.

One rule says which names are taps (:func:`valid_tap_names`): the points a model advertises with
``tap_names()`` (fakd's models: ``head``, ``body.<i>``, ``body_tail``, ``long_skip``), or every
submodule path of a model that advertises none. ``FeatureTaps`` and :func:`resolve_taps` (a user's tap
list, checked before any work) both apply it.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from fakd.errors import FakdError


def valid_tap_names(model: nn.Module) -> list[str]:
    """The model's advertised tap points (``model.tap_names()``), else all its submodule paths."""
    if callable(getattr(model, "tap_names", None)):
        return list(model.tap_names())
    return [name for name, _ in model.named_modules() if name]


def resolve_taps(model: nn.Module, names=None) -> list[str]:
    """A user's tap list checked against :func:`valid_tap_names`; ``None`` means ``model.default_taps``.

    A single string counts as one name; an empty list is allowed (no feature taps); a name given
    twice is an error (taps are paired one to one with the other model's).
    """
    if names is None:
        return list(model.default_taps)
    names = [names] if isinstance(names, str) else list(names)
    valid = valid_tap_names(model)
    unknown = [name for name in names if name not in valid]
    if unknown:
        raise FakdError(f"unknown tap(s) {unknown} in {type(model).__name__}: valid ones are {valid}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise FakdError(f"tap(s) {repeated} given more than once")
    return names


def check_tap_pairs(student_taps, teacher_taps, *, what: str) -> None:
    """Student and teacher taps are paired one to one: equal counts, else FakdError naming ``what``."""
    if len(student_taps) != len(teacher_taps):
        raise FakdError(f"{what}: {len(student_taps)} student taps {list(student_taps)} but "
                        f"{len(teacher_taps)} teacher taps {list(teacher_taps)}; they are paired one to one")


class FeatureTaps:
    """Forward hooks on ``model``'s submodules ``names``; ``.features`` is ``{name: tensor}``."""

    def __init__(self, model: nn.Module, names: Iterable[str]):
        self.model = model
        self.names = list(dict.fromkeys(names))  # unique, order kept
        modules = {name: self._resolve(name) for name in self.names}
        self.features: dict[str, Tensor] = {}
        self._handles = [model.register_forward_pre_hook(self._new_pass)]
        for name, module in modules.items():
            self._handles.append(module.register_forward_hook(self._recorder(name)))

    def _resolve(self, name: str) -> nn.Module:
        if not isinstance(name, str) or not name:
            raise TypeError(f"tap name must be a non-empty dotted module path, got {name!r}")
        valid = valid_tap_names(self.model)
        if name not in valid:
            raise FakdError(f"unknown tap {name!r} in {type(self.model).__name__}; "
                            f"valid names: {', '.join(valid)}")
        return self.model.get_submodule(name)

    def _new_pass(self, module: nn.Module, args) -> None:
        self.features = {}

    def _recorder(self, name: str):
        def record(module: nn.Module, args, output) -> None:
            if name in self.features:
                raise RuntimeError(f"tapped module {name!r} ran twice in one forward pass; tap a "
                                   f"module that runs once per call")
            if not isinstance(output, Tensor):
                raise TypeError(f"tapped module {name!r} returned {type(output).__name__}, "
                                f"not a tensor")
            self.features[name] = output
        return record

    def clear(self) -> None:
        """Forget the features of the last pass."""
        self.features = {}

    def remove(self) -> None:
        """Remove every hook; the model runs as if never tapped."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __getitem__(self, name: str) -> Tensor:
        try:
            return self.features[name]
        except KeyError:
            raise RuntimeError(f"no feature captured for tap {name!r}: run the model first "
                               f"(captured: {', '.join(self.features) or 'none'})") from None

    def __enter__(self) -> "FeatureTaps":
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()
