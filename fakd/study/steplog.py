"""Each study step's start, end and duration on the command line, so a study's log shows where its
time goes without a profiler (issue 22); the durations also go into the report's provenance."""

from __future__ import annotations

import time
from datetime import datetime


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


class StepClock:
    """Says ``study: step i/n NAME (TITLE) started HH:MM:SS`` and ``... ended HH:MM:SS after S s: STATUS``."""

    def __init__(self, total: int, *, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.seconds: dict[str, float] = {}
        self._name, self._started, self._index = "", 0.0, 0

    def _say(self, line: str) -> None:
        if self.enabled:
            print(f"study: {line}", flush=True)

    def start(self, name: str, title: str) -> None:
        self._index += 1
        self._name, self._started = name, time.monotonic()
        self._say(f"step {self._index}/{self.total} {name} ({title}) started {_clock()}")

    def end(self, status: str) -> float:
        seconds = time.monotonic() - self._started
        self.seconds[self._name] = seconds
        self._say(f"step {self._index}/{self.total} {self._name} ended {_clock()} after {seconds:.1f} s: {status}")
        return seconds

    def timed(self, what: str, started: float) -> None:
        """A phase outside the steps (e.g. writing the report), by the time it started."""
        seconds = time.monotonic() - started
        self.seconds[what] = seconds
        self._say(f"{what} took {seconds:.1f} s")

    def summary(self) -> str:
        """``name 12 s, name 31 s, ...`` for the report's provenance."""
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items())
