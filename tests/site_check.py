"""Open a built documentation site in headless Chromium and list what a reader would see broken.

The site folder is served over HTTP on the loopback address (as a host serves it: the search index is
fetched by a worker, which a ``file://`` page may not do); from ``index.html`` every internal HTML page
is opened, following links. A page's console errors, exceptions and failed loads, its images that did
not load and its internal links to files that are not there are problems. Links to other sites are not
followed (the site loads nothing from them).

    python tests/site_check.py site        # after make docs: prints the pages and problems; exit 1 if any
    python tests/site_check.py site --screenshots docs   # also docs/site_landing.png and docs/site_lesson.png
"""

from __future__ import annotations

import base64
import functools
import http.server
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urldefrag

from browser_check import Browser, _errors, find_browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """``folder`` served on 127.0.0.1 (a free port) while the block runs; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _exists(url: str) -> bool:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status == 200
    except urllib.error.URLError:
        return False


def _check_page(browser: Browser, url: str, base: str) -> tuple[list[str], list[str], list[str]]:
    """(problems, internal HTML pages linked, other internal files linked) of one page."""
    facts, events = browser.open(url)
    name = url[len(base):] or "index.html"
    problems = [f"{name}: {problem}" for problem in _errors(events)]
    problems += [f"{name}: broken image {image['src'][:120]}" for image in facts["images"] if not image["ok"]]
    pages, files = [], []
    for link in facts["links"]:
        target = urldefrag(link).url
        if target.startswith(base) and target != url:
            (pages if target.endswith(".html") or target.endswith("/") else files).append(target)
    return problems, pages, files


def check_site(site: Path, *, executable: str | None = None) -> tuple[list[str], list[str]]:
    """(pages opened, problems) of the site in ``site``, crawled from its ``index.html``."""
    executable = executable or find_browser()
    if executable is None:
        raise RuntimeError("no Chromium found (Debian: apt-get install chromium)")
    opened, problems, checked = [], [], set()
    with served(Path(site)) as base, Browser(executable) as browser:
        queue = [base + "index.html"]
        while queue:
            url = queue.pop(0)
            if url in opened:
                continue
            if not _exists(url):
                problems.append(f"broken link to {url[len(base):]}")
                continue
            opened.append(url)
            page_problems, pages, files = _check_page(browser, url, base)
            problems += page_problems
            queue += [page for page in pages if page not in opened]
            for target in dict.fromkeys(files):
                if target not in checked:
                    checked.add(target)
                    if not _exists(target):
                        problems.append(f"{url[len(base):]}: broken link {target[len(base):]}")
    return [url[len(base):] for url in opened], problems


SCREENSHOTS = {"site_landing.png": ("index.html", ""), "site_lesson.png": ("lesson.html", "4-the-kd-families-side-by-side")}


def take_screenshots(site: Path, folder: Path, *, width: int = 1280, height: int = 900) -> list[Path]:
    """What a reader sees first on the landing page and in the lesson (at its KD families), as PNGs in ``folder``."""
    written = []
    with served(Path(site)) as base, Browser(find_browser()) as browser:
        browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        for name, (page, anchor) in SCREENSHOTS.items():
            browser.open(base + page + (f"#{anchor}" if anchor else ""))
            time.sleep(0.5)
            data = browser.call("Page.captureScreenshot", format="png")["data"]
            path = Path(folder) / name
            path.write_bytes(base64.b64decode(data))
            written.append(path)
    return written


if __name__ == "__main__":
    arguments = sys.argv[1:]
    site_folder = Path(arguments[0] if arguments and not arguments[0].startswith("--") else "site")
    pages, found = check_site(site_folder)
    print(f"{len(pages)} pages opened")
    print("\n".join(found) or "no problems")
    if "--screenshots" in arguments:
        print(*take_screenshots(site_folder, Path(arguments[arguments.index("--screenshots") + 1])), sep="\n")
    sys.exit(1 if found else 0)
