"""Shared fixtures: the real data sets in ../shared/data.

Without them (a user's machine) the tests that need them skip with a reason; under CI (the
environment variable CI is set) a missing data folder is a failure, so CI never passes by skipping.
"""

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data (Set5, Set14, BSD100, T91, BSD200)."""
    if not (SHARED_DATA / "Set5" / "HR").is_dir():
        message = f"real data sets not found at {SHARED_DATA}"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have ../shared/data beside the checkout")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="module")
def chromium():
    """The system's headless Chromium for the browser tests (skips without one; fails under CI=true)."""
    from browser_check import find_browser

    executable = find_browser()
    if executable is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must install it")
        pytest.skip(message)
    return executable
