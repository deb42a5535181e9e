"""Importing spandrel (the optional extra ``fakd[spandrel]``) without torchvision.

spandrel's top-level import loads all its architectures; two of them, LaMa (inpainting) and RestoreFormer
(face restoration), import ``torchvision.transforms.functional``, so the import fails where torchvision is
absent or does not load beside the installed torch (the CPU torch wheel with the registry's torchvision:
``operator torchvision::nms does not exist``). fakd never installs torchvision. When the plain import fails
for that reason, spandrel is imported once more with placeholder ``torchvision`` modules present only
during the import (removed afterwards; any use of them raises), and fakd loads through a registry of
spandrel's architectures without those two. Every super-resolution architecture is unaffected.
"""

from __future__ import annotations

import sys
import types
from functools import lru_cache

from fakd.errors import FakdError

TORCHVISION_ARCHITECTURES = ("LaMa", "RestoreFormer")
_PLACEHOLDERS = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")


@lru_cache(maxsize=1)
def spandrel_registry():
    """(spandrel module, the ArchRegistry fakd loads with, the architectures left out); FakdError without
    spandrel."""
    try:
        import spandrel
        return spandrel, spandrel.MAIN_REGISTRY, ()
    except ModuleNotFoundError as error:
        if error.name == "spandrel":
            raise FakdError("loading networks of other architectures needs spandrel: "
                            "pip install 'fakd[spandrel]'") from None
        if not (error.name or "").startswith("torchvision"):
            raise
    except RuntimeError as error:  # torchvision installed but its compiled operators do not load
        if "torchvision" not in str(error):
            raise
    spandrel = _import_with_placeholders()
    kept = [support for support in spandrel.MAIN_REGISTRY
            if str(support.architecture.id) not in TORCHVISION_ARCHITECTURES]
    registry = spandrel.ArchRegistry()
    registry.add(*kept)
    return spandrel, registry, TORCHVISION_ARCHITECTURES


def _import_with_placeholders():
    """spandrel imported while ``torchvision`` names placeholder modules (restored afterwards)."""
    for name in [name for name in sys.modules if name == "spandrel" or name.startswith(("spandrel.", "torchvision"))]:
        del sys.modules[name]
    for name in _PLACEHOLDERS:
        sys.modules[name] = _placeholder(name)
    try:
        import spandrel
    finally:
        for name in _PLACEHOLDERS:
            sys.modules.pop(name, None)
    return spandrel


def _placeholder(name: str) -> types.ModuleType:
    """A module whose every attribute raises: only the two left-out architectures name it."""
    module = types.ModuleType(name)
    module.__path__ = []  # a package, so its submodules import

    def missing(attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Unavailable(f"{name}.{attribute}")

    module.__getattr__ = missing
    return module


class _Unavailable:
    """Stands for a torchvision name in the left-out architectures; using it raises."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, *args, **kwargs):
        raise FakdError(f"{self.name} needs torchvision, which fakd does not load")

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return _Unavailable(f"{self.name}.{attribute}")
