"""Allocator settings for the training processes fakd launches itself (sweeps, benchmarks).

glibc serves every allocation above its mmap threshold (dynamic, up to 32 MB) with a fresh
``mmap`` and gives it back with ``munmap`` on free. A training step allocates and frees the same
large activations every iteration, so the process spends much of its time in page faults
(system time above user time at LR patch 48). Telling glibc never to use mmap for the heap and
never to trim it keeps freed memory in the process for reuse:

    MALLOC_MMAP_MAX_=0                     no mmap'ed chunks: large blocks come from the heap
    MALLOC_TRIM_THRESHOLD_=68719476736     (64 GiB) never return the heap's top to the system

The price is a process whose resident size stays at its peak. The variables are read when the
process starts, so they only help a *child* process: pass ``env=tuned_malloc_env()`` to
``subprocess``. Measured effect on this machine: ``benchmarks/kd_step.py`` (both ways) and
docs/design.md (Performance facts). Non-glibc platforms ignore the variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TUNED_MALLOC_VARIABLES = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(64 * 1024**3),
}


def tuned_malloc_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the allocator settings above."""
    env = dict(os.environ if base is None else base)
    env.update(TUNED_MALLOC_VARIABLES)
    return env


def untuned_malloc_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` without the allocator settings (glibc defaults), for side-by-side measurements."""
    env = dict(os.environ if base is None else base)
    for name in TUNED_MALLOC_VARIABLES:
        env.pop(name, None)
    return env


def malloc_is_tuned(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's) carries the tuned settings."""
    env = os.environ if env is None else env
    return all(env.get(name) == value for name, value in TUNED_MALLOC_VARIABLES.items())
