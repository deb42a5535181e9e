"""``fakd explore`` as a server a lab leaves running: click latency, memory after many page loads,
the kernel of a page that vanished, and the time Ctrl-C takes, measured in headless Chromium.

One run of ``fakd explore`` with its defaults (cpu profile, shipped models, 64x64 crops,
OMP_NUM_THREADS=1):

- click latency: ``--clicks`` real clicks on distinct pixels of one page, from the pointer-down
  event to the canvas having drawn the new maps (``browser_check.click_explorer_pixel``);
- memory: ``--loads`` page loads one after another, each page closed (navigated away) once its maps
  are drawn; the proportional set size (PSS: shared pages split between processes, so nothing is
  counted twice) of the server and all its kernels, at start, after each load and after the last
  page closed, and the number of kernels;
- a vanished page: a page whose browser is killed (no goodbye from the page): seconds until the
  server culls its kernel;
- Ctrl-C: with one page open, SIGINT to ``fakd explore`` until the command has exited, its kernels
  are gone and the port is free.

    .venv/bin/python benchmarks/explorer_server.py --json benchmarks/results/explorer_server.json
    .venv/bin/python benchmarks/explorer_server.py --loads 1 --clicks 3 --screenshots docs/   # the web screenshots
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from browser_check import EXPLORER, Browser, click_explorer_pixel, find_browser  # noqa: E402
from fakd.commands.explore import kernel_processes  # noqa: E402

VIEWPORT = (1400, 900)
PICKER = ".fakd-region-picker"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items() if key != "FAKD_DATA_ROOT"}
    environment["OMP_NUM_THREADS"] = "1"
    server = subprocess.Popen([sys.executable, "-m", "fakd.cli", "explore", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=environment)
    line = server.stdout.readline()
    if f":{port}/" not in line:
        raise RuntimeError(f"fakd explore did not start: {line!r}; see {log}")
    return server


def family(server: subprocess.Popen) -> list[psutil.Process]:
    root = psutil.Process(server.pid)
    return [root, *root.children(recursive=True)]


def kernels(server: subprocess.Popen) -> list[psutil.Process]:
    """The server's kernels, as `fakd explore` itself finds them."""
    return kernel_processes(server)


def memory_mb(server: subprocess.Popen) -> float:
    """PSS of the command, Voilà and every kernel, in MB."""
    total = 0
    for process in family(server):
        try:
            total += process.memory_full_info().pss
        except psutil.Error:
            pass
    return total / 1e6


def wait_for_kernels(server: subprocess.Popen, count: int, *, timeout: float) -> float:
    started = time.monotonic()
    while len(kernels(server)) != count:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(kernels(server))} kernels after {timeout} s, expected {count}")
        time.sleep(0.2)
    return time.monotonic() - started


def load_page(browser: Browser, url: str) -> float:
    """Seconds from navigation to the maps drawn."""
    browser.call("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1], deviceScaleFactor=1,
                 mobile=False)
    started = time.monotonic()
    browser.open(url)
    browser.wait_for_value(f"document.querySelector('{EXPLORER}[data-version]') !== null")
    return time.monotonic() - started


def viewport_shot(browser: Browser, path: Path) -> None:
    """What the user sees in a 1400x900 window, scrolled to the top."""
    import base64

    browser.evaluate("window.scrollTo(0, 0); true")
    time.sleep(0.5)
    path.write_bytes(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))


def screenshots(browser: Browser, folder: Path, photo: Path) -> None:
    """The page after a click, in the crop view, and with an uploaded photo's region moved by a click."""
    viewport_shot(browser, folder / "explorer_web_click.png")
    browser.evaluate("[...document.querySelectorAll('.widget-toggle-button')].find(b => b.textContent === 'crop matrices')"
                     ".click(); true")
    browser.wait_for_value(f"document.querySelector('{EXPLORER} canvas[data-role=map]').height > 400")
    viewport_shot(browser, folder / "explorer_web_crop.png")
    browser.evaluate("[...document.querySelectorAll('.widget-toggle-button')].find(b => b.textContent === 'pixel rows')"
                     ".click(); true")
    click_explorer_pixel(browser, (30, 30))  # a real click first: a file dialog needs a recent user gesture
    browser.choose_files(".widget-upload", [str(photo)])
    browser.wait_for_value(f"document.querySelector('{PICKER}[data-box]') !== null && "
                           f"document.querySelector('{PICKER}').offsetHeight > 0")
    box = json.loads(browser.evaluate(f"(() => {{ const c = document.querySelector('{PICKER} canvas'); "
                                      "const b = c.getBoundingClientRect(); return JSON.stringify({left: b.left + "
                                      "c.clientLeft, top: b.top + c.clientTop, width: c.clientWidth}); })()"))
    before = browser.evaluate(f"document.querySelector('{PICKER}').dataset.box")
    step = box["width"] / 600
    browser.click(box["left"] + 330 * step, box["top"] + 170 * step)  # coffee: the rim of the cup
    browser.wait_for_value(f"document.querySelector('{PICKER}').dataset.box !== {json.dumps(before)}")
    time.sleep(1.5)
    viewport_shot(browser, folder / "explorer_web_upload.png")


def measure(executable: str, *, loads: int, clicks: int, shots: Path | None, work: Path) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = start_server(port, work / "explore.log")
    result = {"memory_mb_at_start": round(memory_mb(server), 1)}
    try:
        load_seconds, memory_after, kernels_after = [], [], []
        with Browser(executable, timeout=240) as browser:
            for index in range(loads):
                load_seconds.append(load_page(browser, url))
                if index == 0:
                    if shots:
                        viewport_shot(browser, shots / "explorer_web.png")
                    latencies = []
                    for click in range(clicks):
                        pixel = (5 + (click * 7) % 50, 3 + (click * 11) % 55)
                        seen = click_explorer_pixel(browser, pixel)
                        assert seen["pixel"] == f"{pixel[0]},{pixel[1]}", seen
                        latencies.append(seen["latency"])
                    if shots:
                        from PIL import Image
                        from skimage import data

                        photo = work / "coffee.png"
                        Image.fromarray(data.coffee()).save(photo)
                        screenshots(browser, shots, photo)
                browser.open("about:blank")  # the page closes
                time.sleep(1.0)
                memory_after.append(round(memory_mb(server), 1))
                kernels_after.append(len(kernels(server)))
                print(f"  load {index + 1}: {load_seconds[-1]:.1f} s to maps; after closing: {kernels_after[-1]} "
                      f"kernels, {memory_after[-1]:.0f} MB", flush=True)
        result.update(load_s_median=round(statistics.median(load_seconds), 1),
                      load_s_all=[round(v, 1) for v in load_seconds],
                      memory_mb_after_each_closed_page=memory_after, kernels_after_each_closed_page=kernels_after,
                      click_ms_median=round(statistics.median(latencies), 1), click_ms_min=round(min(latencies), 1),
                      click_ms_max=round(max(latencies), 1), click_ms_all=[round(v, 1) for v in latencies])
        result["kernel_gone_after_last_close_s"] = round(wait_for_kernels(server, 0, timeout=60), 1)
        result["memory_mb_after_loads"] = round(memory_mb(server), 1)

        browser = Browser(executable, timeout=240)  # a page whose browser dies: no goodbye
        load_page(browser, url)
        browser.process.kill()  # measured from here
        browser.process.wait()
        result["vanished_page_kernel_culled_after_s"] = round(wait_for_kernels(server, 0, timeout=120), 1)
        browser.profile.cleanup()

        with Browser(executable, timeout=240) as browser:
            load_page(browser, url)
            assert len(kernels(server)) == 1
            family_before = family(server)
            started = time.monotonic()
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
            result["ctrl_c_to_exit_s"] = round(time.monotonic() - started, 2)
            alive = [process for process in family_before if process.is_running() and process.status() != "zombie"]
            result["processes_left_after_ctrl_c"] = len(alive)
            with socket.socket() as probe:  # free again for a new server (TIME_WAIT is no listener)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--screenshots", type=Path, help="save the web page's screenshots into this folder")
    args = parser.parse_args()
    executable = find_browser()
    if executable is None:
        sys.exit("no Chromium found (Debian: apt-get install chromium)")
    import tempfile

    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fakd-explore-bench-") as work:
        result = measure(executable, loads=args.loads, clicks=args.clicks, shots=args.screenshots, work=Path(work))
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "loads": args.loads,
              "clicks": args.clicks, "load_average_at_start": [round(value, 2) for value in load],
              "load_average_at_end": [round(value, 2) for value in os.getloadavg()], "cpus": os.cpu_count(),
              "where": "fakd explore defaults (cpu profile, shipped models, 64x64 crops), OMP_NUM_THREADS=1, "
                       "headless Chromium", **result}
    rows = [("click to updated maps, median (ms)", result["click_ms_median"]),
            ("  min / max (ms)", f"{result['click_ms_min']} / {result['click_ms_max']}"),
            ("page load to maps, median (s)", result["load_s_median"]),
            ("server memory at start (MB, PSS)", result["memory_mb_at_start"]),
            (f"server memory after {args.loads} page loads, pages closed (MB, PSS)", result["memory_mb_after_loads"]),
            ("most kernels alive after a page closed", max(result["kernels_after_each_closed_page"])),
            ("kernel of a vanished page culled after (s)", result["vanished_page_kernel_culled_after_s"]),
            ("Ctrl-C to stopped, one page open (s)", result["ctrl_c_to_exit_s"]),
            ("processes left after Ctrl-C", result["processes_left_after_ctrl_c"])]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:{width}s}  {value}")
    print(f"load average {result['load_average_at_start']} at start, {result['load_average_at_end']} at end "
          f"({result['cpus']} cores)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
