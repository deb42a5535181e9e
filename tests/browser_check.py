"""Open a rendered report in headless Chromium and list what a reader would see broken.

Checks the page and every local HTML page it links to: images that did not load, links to files that
do not exist, console errors, uncaught exceptions and failed loads (e.g. a script from a CDN,
offline). Speaks the DevTools protocol over a websocket (``websocket-client``) to the Chromium of the
machine (Debian: ``apt-get install chromium``); only the loopback address is used.

    python tests/browser_check.py reports/cpu/index.html     # prints the problems; exit 1 if any
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlparse

import websocket

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Headless, offline-friendly, no sandbox (CI runs as root), no background traffic of the browser's own.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-default-apps", "--no-pings", "--disable-domain-reliability",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
_PAGE_FACTS = """JSON.stringify({
  images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
})"""


def find_browser() -> str | None:
    """The Chromium executable on PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


class Browser:
    """A headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, executable: str, *, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="fakd-chromium-", ignore_cleanup_errors=True)  # helpers may outlive the browser
        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile.name}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as answer:
            page = next(target for target in json.load(answer) if target["type"] == "page")
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout)
        self.next_id, self.events = 0, []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def _devtools_port(self) -> int:
        marker = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if marker.is_file() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            if self.process.poll() is not None:
                raise RuntimeError(f"Chromium exited with code {self.process.returncode} at start")
            time.sleep(0.1)
        raise RuntimeError(f"Chromium opened no DevTools port within {self.timeout:.0f} s")

    def call(self, method: str, **params) -> dict:
        """Send one command; keep the events that arrive before its answer."""
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def _wait_for(self, event: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(message.get("method") == event for message in self.events):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {event} within {self.timeout:.0f} s")
            self.events.append(json.loads(self.socket.recv()))

    def open(self, url: str) -> tuple[dict, list[dict]]:
        """Load ``url``; returns (its images and links, the events seen while loading)."""
        self.events = []
        self.call("Page.navigate", url=url)
        self._wait_for("Page.loadEventFired")
        time.sleep(0.3)  # late console messages of scripts run at load
        facts = json.loads(self.call("Runtime.evaluate", expression=_PAGE_FACTS, returnByValue=True)["result"]["value"])
        self.call("Runtime.evaluate", expression="1")  # collect events queued meanwhile
        return facts, self.events

    def evaluate(self, expression: str, *, await_promise: bool = False):
        """The value of a JavaScript expression in the page (a promise awaited when asked)."""
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise RuntimeError(f"page script failed: {details.get('exception', {}).get('description') or details.get('text')}")
        return answer["result"].get("value")

    def wait_for_value(self, expression: str, *, timeout: float | None = None):
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"{expression!r} stayed false for {timeout or self.timeout:.0f} s")

    def click(self, x: float, y: float) -> None:
        """A real left click at viewport coordinates (press and release through the input pipeline)."""
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def choose_files(self, button: str, paths: list[str]) -> None:
        """Click ``button`` (a selector) and answer the file dialog it opens with ``paths``, as a user would."""
        self.call("Page.setInterceptFileChooserDialog", enabled=True)
        self.evaluate(f"document.querySelector({json.dumps(button)}).click(); true")
        self._wait_for("Page.fileChooserOpened")
        opened = next(message for message in self.events if message.get("method") == "Page.fileChooserOpened")
        self.call("DOM.setFileInputFiles", backendNodeId=opened["params"]["backendNodeId"],
                  files=[str(path) for path in paths])
        self.call("Page.setInterceptFileChooserDialog", enabled=False)

    def screenshot(self, path: Path, *, width: int = 1400, height: int = 1000) -> None:
        """A PNG of the page's full height (at least ``height``), ``width`` CSS pixels wide."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        full = self.evaluate("Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=max(height, int(full)),
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        Path(path).write_bytes(base64.b64decode(data))

    def problems(self) -> list[str]:
        """Console errors, exceptions and failed loads seen so far (see ``_errors``)."""
        self.call("Runtime.evaluate", expression="1")  # collect events queued meanwhile
        return _errors(self.events)

    def close(self) -> None:
        try:
            self.socket.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# The explorer's canvas (fakd/analysis/affinity_canvas.js) sets data-version on its element after drawing.
EXPLORER = ".fakd-affinity"
_WATCH_MAPS = """window.__fakdDone = new Promise((resolve) => {
  const el = document.querySelector('%s');
  const before = el.dataset.version;
  let pressed = null;
  document.addEventListener('pointerdown', (event) => { pressed = event.timeStamp; }, {capture: true, once: true});
  const observer = new MutationObserver(() => {
    if (el.dataset.version !== before) {
      observer.disconnect();
      resolve(JSON.stringify({latency: performance.now() - pressed, pixel: el.dataset.pixel}));
    }
  });
  observer.observe(el, {attributes: true, attributeFilter: ['data-version']});
}); true""" % EXPLORER
_IMAGE_PANEL = """JSON.stringify((() => {
  const canvas = document.querySelector('%s canvas[data-role=image]');
  canvas.scrollIntoView({block: 'center'});
  const box = canvas.getBoundingClientRect();
  return {left: box.left + canvas.clientLeft, top: box.top + canvas.clientTop, width: canvas.clientWidth,
          size: document.querySelector('%s').dataset.imageSize.split(',').map(Number)};
})())""" % (EXPLORER, EXPLORER)


def click_explorer_pixel(browser: Browser, pixel: tuple[int, int]) -> dict:
    """Click LR pixel (y, x) of the explorer's image panel with a real mouse event and wait for the
    maps: ``{"latency": ms from the pointer-down event to the drawn maps, "pixel": "y,x" shown}``."""
    box = json.loads(browser.evaluate(_IMAGE_PANEL))
    step = box["width"] / box["size"][1]
    browser.evaluate(_WATCH_MAPS)
    browser.click(box["left"] + (pixel[1] + 0.5) * step, box["top"] + (pixel[0] + 0.5) * step)
    return json.loads(browser.evaluate("window.__fakdDone", await_promise=True))


def _errors(events: list[dict]) -> list[str]:
    problems = []
    for message in events:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            problems.append(f"exception: {params['exceptionDetails'].get('text')} "
                            f"{params['exceptionDetails'].get('exception', {}).get('description', '')}".strip())
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            problems.append("console error: " + " ".join(str(arg.get("value", arg.get("description")))
                                                          for arg in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            problems.append(f"console error: {params['entry'].get('text')} {params['entry'].get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            problems.append(f"failed load: {params.get('errorText')} ({params.get('type')})")
    return problems


def _local_file(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def check_page(browser: Browser, page: Path) -> tuple[list[str], list[Path]]:
    """(problems of one page, the local HTML pages it links to)."""
    facts, events = browser.open(page.resolve().as_uri())
    problems = [f"{page.name}: {problem}" for problem in _errors(events)]
    problems += [f"{page.name}: broken image {image['src'][:120]}" for image in facts["images"] if not image["ok"]]
    pages = []
    for link in facts["links"]:
        target = _local_file(link)
        if target is None or target == page.resolve():
            continue  # another site, or an anchor on this page
        if not target.exists():
            problems.append(f"{page.name}: broken link {link}")
        elif target.suffix == ".html":
            pages.append(target)
    return problems, pages


def check_report(index: Path, *, executable: str | None = None) -> list[str]:
    """Problems of ``index`` and of the local HTML pages it links to (one level); empty when all is well."""
    executable = executable or find_browser()
    if executable is None:
        raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
    with Browser(executable) as browser:
        problems, pages = check_page(browser, Path(index))
        for page in dict.fromkeys(pages):
            problems += check_page(browser, page)[0]
    return problems


if __name__ == "__main__":
    found = check_report(Path(sys.argv[1]))
    print("\n".join(found) or "no problems")
    sys.exit(1 if found else 0)
