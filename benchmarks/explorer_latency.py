"""Click-to-updated-maps latency of the affinity explorer in a real browser: the old slider path vs
the new click path, side by side in one JupyterLab page and one kernel, interleaved change by change.

- old: the explorer's widgets before issue 20 (``explorer_slider_baseline.py``, verbatim): the pixel's
  y slider is changed through its readout (focus, type, Enter: real key events), the kernel redraws
  the whole matplotlib figure (features recomputed) into an Output widget; measured from the
  key-down event to the new figure decoded in the page.
- new: ``fakd.analysis.explorer_app``: a real mouse click on the image panel; measured from the
  pointer-down event to the canvas having drawn the new maps (``browser_check.click_explorer_pixel``).

Both show the cpu profile's shipped teacher and first student on the first 64x64 LR crop, all three
default taps. JupyterLab runs from a temporary folder with its own config, runtime and workspace
folders; headless Chromium from ``tests/browser_check.py``.

    .venv/bin/python benchmarks/explorer_latency.py --changes 20 --json benchmarks/results/explorer_latency.json
    .venv/bin/python benchmarks/explorer_latency.py --notebook-screenshot docs/explorer_jupyterlab.png
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from browser_check import EXPLORER, Browser, click_explorer_pixel, find_browser  # noqa: E402

SETUP = f"""import sys
sys.path.insert(0, {str(HERE)!r})
from explorer_slider_baseline import explorer_widgets
from fakd.analysis.explorer_app import explorer_app
from fakd.analysis.explorer_sources import explorer_from_sources
from fakd.train.runs import use_profile_threads
use_profile_threads("cpu")
explorer, _ = explorer_from_sources(profile="cpu", crop=64)
selection = explorer.default_selection()"""
OLD_CELL = "old = explorer_widgets(explorer, selection=selection)\nold.add_class('fakd-old-explorer')\nold"
NEW_CELL = "explorer_app(explorer, selection=selection, max_side=64)"
# Resolves with ms from the key-down event to the Output widget's new figure, decoded.
WATCH_OLD = """window.__fakdOld = new Promise((resolve) => {
  const out = document.querySelector('.fakd-old-explorer .widget-output');
  const before = (out.querySelector('img') || {}).src;
  let pressed = null;
  document.addEventListener('keydown', (event) => { pressed = event.timeStamp; }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    const img = out.querySelector('img');
    if (img && img.src !== before) { observer.disconnect(); img.decode().then(() => resolve(performance.now() - pressed)); }
  });
  observer.observe(out, {childList: true, subtree: true, attributes: true});
}); true"""
READOUT = """(() => { const r = document.querySelector('.fakd-old-explorer .widget-readout');
  r.scrollIntoView({block: 'center'}); r.focus(); r.textContent = '%d';
  const range = document.createRange(); range.selectNodeContents(r); range.collapse(false);
  const selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range); return true; })()"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_lab(folder: Path, port: int) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1 without a token, its config, runtime and workspaces inside ``folder``."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text) for text in (SETUP, OLD_CELL, NEW_CELL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, str(folder / "explorer_latency.ipynb"))
    news = folder / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')  # no news pop-up over the screenshot
    environment = {**os.environ, "JUPYTER_CONFIG_DIR": str(folder / "config"),
                   "JUPYTER_RUNTIME_DIR": str(folder / "runtime"), "OMP_NUM_THREADS": "1"}
    environment.pop("FAKD_DATA_ROOT", None)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={folder}",
               "--LabApp.expose_app_in_browser=True", "--allow-root", f"--LabApp.workspaces_dir={folder / 'workspaces'}",
               f"--LabApp.user_settings_dir={folder / 'settings'}"]
    return subprocess.Popen(command, cwd=folder, env=environment, stdout=subprocess.DEVNULL,
                            stderr=open(folder / "lab.log", "w"))


def open_and_run(browser: Browser, url: str) -> None:
    """Open the notebook, run all cells, wait for both explorers."""
    deadline = time.monotonic() + 120
    while True:
        try:
            with socket.create_connection(("127.0.0.1", int(url.split(":")[2].split("/")[0])), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start")
            time.sleep(0.5)
    browser.open(url)
    browser.wait_for_value("window.jupyterapp && document.querySelector('.jp-Notebook') !== null", timeout=120)
    panel = "[...window.jupyterapp.shell.widgets('main')].find((w) => w.content && w.content.widgets)"
    browser.wait_for_value(f"(() => {{ const p = {panel}; return p !== undefined && p.sessionContext.isReady &&"
                           " p.sessionContext.session.kernel.status === 'idle'; })()", timeout=120)
    for index in range(3):  # cell by cell: each waits for the previous one's execution count
        browser.evaluate(f"(() => {{ const panel = {panel}; window.jupyterapp.shell.activateById(panel.id);"
                         f" panel.content.activeCellIndex = {index};"
                         " window.jupyterapp.commands.execute('notebook:run-cell'); return true; })()")
        browser.wait_for_value(f"{panel}.content.widgets[{index}].model.executionCount !== null", timeout=300)
    browser.wait_for_value(f"document.querySelector('{EXPLORER}[data-version]') !== null && "
                           "document.querySelector('.fakd-old-explorer .widget-readout') !== null", timeout=120)


def change_old_slider(browser: Browser, value: int) -> float:
    browser.evaluate(WATCH_OLD)
    browser.evaluate(READOUT % value)
    for kind in ("keyDown", "keyUp"):
        browser.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)
    return float(browser.evaluate("window.__fakdOld", await_promise=True))


def measure(browser: Browser, *, changes: int) -> dict[str, list[float]]:
    """Interleaved: one slider change of the old widgets, one click of the new, ``changes`` times."""
    times = {"old slider path": [], "new click path": []}
    for index in range(changes):
        times["old slider path"].append(change_old_slider(browser, 10 + (index * 7) % 40))
        pixel = (5 + (index * 7) % 50, 3 + (index * 11) % 55)
        seen = click_explorer_pixel(browser, pixel)
        assert seen["pixel"] == f"{pixel[0]},{pixel[1]}", seen
        times["new click path"].append(seen["latency"])
        print(f"  change {index + 1}: old {times['old slider path'][-1]:.0f} ms, new {seen['latency']:.1f} ms",
              flush=True)
    return times


def notebook_screenshot(executable: str, path: Path) -> None:
    """``01_affinity_explorer`` itself in JupyterLab, all cells run, scrolled to the explorer."""
    import shutil

    from fakd.study.locations import resolve_notebook

    with tempfile.TemporaryDirectory(prefix="fakd-lab-shot-") as folder:
        port = free_port()
        lab = start_lab(Path(folder), port)
        shutil.copy(resolve_notebook("01_affinity_explorer"), Path(folder) / "01_affinity_explorer.ipynb")
        try:
            with Browser(executable, timeout=240) as browser:
                browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1,
                             mobile=False)
                url = f"http://127.0.0.1:{port}/lab/tree/01_affinity_explorer.ipynb"
                deadline = time.monotonic() + 120
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=1):
                            break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise RuntimeError("JupyterLab did not start")
                        time.sleep(0.5)
                browser.open(url)
                panel = "[...window.jupyterapp.shell.widgets('main')].find((w) => w.content && w.content.widgets)"
                browser.wait_for_value(f"window.jupyterapp && (() => {{ const p = {panel}; return p !== undefined && "
                                       "p.sessionContext.isReady && p.sessionContext.session.kernel.status === 'idle'; })()",
                                       timeout=120)
                browser.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells'); true")
                browser.wait_for_value(f"document.querySelector('{EXPLORER}[data-version]') !== null", timeout=600)
                time.sleep(1.0)
                browser.evaluate(f"document.querySelector('{EXPLORER}').closest('.jp-Cell').previousElementSibling"
                                 ".scrollIntoView({block: 'start'}); true")
                time.sleep(1.0)
                path.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))
        finally:
            lab.terminate()
            lab.wait(timeout=30)


def summary(times: dict[str, list[float]]) -> dict:
    rows = {name: {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values),
                   "all_ms": [round(value, 1) for value in values]} for name, values in times.items()}
    rows["old_over_new"] = rows["old slider path"]["median_ms"] / rows["new click path"]["median_ms"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot of the new explorer in JupyterLab")
    parser.add_argument("--notebook-screenshot", type=Path,
                        help="only save a screenshot of 01_affinity_explorer run in JupyterLab and stop")
    args = parser.parse_args()
    executable = find_browser()
    if executable is None:
        sys.exit("no Chromium found (Debian: apt-get install chromium)")
    if args.notebook_screenshot:
        notebook_screenshot(executable, args.notebook_screenshot)
        return
    with tempfile.TemporaryDirectory(prefix="fakd-latency-") as folder:
        port = free_port()
        lab = start_lab(Path(folder), port)
        try:
            with Browser(executable, timeout=120) as browser:
                browser.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1,
                             mobile=False)
                open_and_run(browser, f"http://127.0.0.1:{port}/lab/tree/explorer_latency.ipynb")
                load = os.getloadavg()
                times = measure(browser, changes=args.changes)
                if args.screenshot:
                    browser.evaluate(f"document.querySelector('{EXPLORER}').scrollIntoView({{block: 'end'}}); true")
                    time.sleep(0.5)
                    data = browser.call("Page.captureScreenshot", format="png")["data"]
                    args.screenshot.write_bytes(base64.b64decode(data))
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "changes": args.changes,
              "load_average_at_start": [round(value, 2) for value in load], "browser": executable,
              "where": "JupyterLab, headless Chromium, one kernel (OMP_NUM_THREADS=1), cpu profile 64x64 crop",
              **summary(times)}
    for name in ("old slider path", "new click path"):
        row = result[name]
        print(f"{name:16s} median {row['median_ms']:8.1f} ms  min {row['min_ms']:8.1f}  max {row['max_ms']:8.1f}")
    print(f"old / new: {result['old_over_new']:.1f}x (load average at start {result['load_average_at_start']})")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
