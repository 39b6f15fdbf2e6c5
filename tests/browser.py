"""Headless Chromium for the tests that drive a page (the web demo, the exported page) and for
``benchmarks/web_speed.py``: a static server, a browser, a page that may reach nothing else."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def static_server(root: Path) -> Iterator[str]:
    """``python -m http.server`` for ``root`` on 127.0.0.1 in a thread; yields its origin."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()


def launch_chromium(playwright):
    """Debian's Chromium when installed, else Playwright's own; raises when neither starts."""
    if Path(CHROMIUM).is_file():
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return playwright.chromium.launch(args=CHROMIUM_ARGS)


def offline_page(browser, origin: str) -> tuple[object, list[str], list[str]]:
    """A page that may reach ``origin`` and nothing else: (page, blocked URLs, page errors)."""
    page = browser.new_page(viewport={"width": 900, "height": 720})
    blocked: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r) -> None:
        if r.request.url.startswith(origin + "/"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page, blocked, errors


def open_with_photo(page, origin: str, photo: Path) -> None:
    """Load the page, wait for the model, pick ``photo`` and wait for its encoding."""
    page.goto(origin + "/index.html")
    page.evaluate("window.affinegan.ready")
    page.set_input_files("#photo", str(photo))
    page.wait_for_selector("body[data-state=encoded]", timeout=120_000)
