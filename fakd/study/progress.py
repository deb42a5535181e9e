"""A progress bar over a sweep's points (done / running / failed), on a terminal only.

Lines about single points go through ``say`` so that they print above the bar instead of through it;
without a terminal (a log file, CI) there is no bar and the lines print as they are.
"""

import sys

from tqdm import tqdm


class PointProgress:
    """One bar for ``total`` points; ``enabled`` False (or stderr not a terminal) shows none."""

    def __init__(self, total: int, *, enabled: bool = True):
        self.counts = {"done": 0, "running": 0, "failed": 0}
        self.bar = tqdm(total=total, unit="point", file=sys.stderr, dynamic_ncols=True, leave=False,
                        disable=not (enabled and sys.stderr.isatty()))

    def finished(self, *, failed: bool) -> None:
        self.counts["failed" if failed else "done"] += 1
        self.bar.update(1)
        self._show()

    def running(self, count: int) -> None:
        if count != self.counts["running"]:
            self.counts["running"] = count
            self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(", ".join(f"{name} {value}" for name, value in self.counts.items()))

    def close(self) -> None:
        self.bar.close()


def say(line: str, *, error: bool = False) -> None:
    """Print a line (stderr for problems, else stdout) without breaking a progress bar."""
    tqdm.write(line, file=sys.stderr if error else sys.stdout)
    (sys.stderr if error else sys.stdout).flush()
