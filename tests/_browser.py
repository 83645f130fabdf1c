"""A real headless browser for tests: Debian's Chromium driven by Playwright.

Playwright's own browser download is never used (``playwright install`` fetches a build
from the network); the browser is the system's ``/usr/bin/chromium`` (``apt-get install
chromium``). Outside CI a missing browser or Playwright skips the test; under CI (the
``CI`` environment variable set, as ``.ci/run`` runs) it fails, so a broken install is
never mistaken for a pass.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for name in (
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if name and Path(name).is_file() and os.access(name, os.X_OK):
            return name
    return None


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required under CI: .ci/run installs it)")
    pytest.skip(reason)


@contextlib.contextmanager
def browser_page(viewport=(1280, 900)):
    """A Playwright page in headless Debian Chromium; closed (and the browser quit) on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    path = chromium_path()
    if path is None:
        _missing("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_folder(folder) -> str:
    """Serve ``folder`` over http on 127.0.0.1 (a free port) in a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# In the page: every <img> that has finished loading, and which ones failed (naturalWidth 0).
IMAGES_JS = """() => Array.from(document.images).map(i => ({src: i.currentSrc || i.src, complete: i.complete,
                                                         width: i.naturalWidth}))"""


def wait_for_images(page, timeout_ms: int = 15000) -> list[dict]:
    """Wait until every image of the page has finished (loaded or failed); return them."""
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)", timeout=timeout_ms)
    return page.evaluate(IMAGES_JS)
