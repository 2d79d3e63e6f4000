"""Headless Chromium for browser tests: find (or install) the system browser, drive it offline.

The browser is the distribution's Chromium at :data:`CHROMIUM_PATH`, driven through the
``playwright`` package. Playwright's own browser builds are never used or downloaded. When the
browser is missing, :func:`ensure_chromium` tries once per test session to install the Debian
``chromium`` package (``apt-get update`` then ``apt-get install -y chromium``, as root); when
that is not possible the tests that need it are skipped with the reason.

The fixtures ``chromium_browser`` (per module) and ``chromium_page`` are registered once, in
``tests/conftest.py``: a second registration would start a second Playwright in the same thread,
which Playwright refuses. Test modules just request them and import the helpers::

    from tests.browser import blocked_requests, file_url

    @pytest.mark.browser
    def test_page(chromium_page, tmp_path):
        chromium_page.goto(file_url(tmp_path / "report.html"))
        assert blocked_requests(chromium_page) == []

Pages of :func:`chromium_page` are offline: every request that is not ``file:``, ``data:``,
``blob:``, ``about:`` or to a loopback address is aborted and recorded
(:func:`blocked_requests`); uncaught page errors are recorded too (:func:`page_errors`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

__all__ = [
    "CHROMIUM_PATH",
    "CHROMIUM_ARGS",
    "ensure_chromium",
    "launch_chromium",
    "file_url",
    "blocked_requests",
    "page_errors",
    "image_sizes",
    "chromium_browser",
    "chromium_page",
]

#: The system Chromium (Debian's ``chromium`` package).
CHROMIUM_PATH = Path("/usr/bin/chromium")

#: Command-line switches: headless, no sandbox (tests run as root), and nothing that phones home.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

_INSTALL_TIMEOUT_S = 900
_LOCK_PATH = Path(tempfile.gettempdir()) / "corecast-chromium-install.lock"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
_OFFLINE_SCHEMES = {"file", "data", "blob", "about"}

# Outcome of this process's one install attempt: None = not tried yet, "" = installed.
_install_outcome: str | None = None
_blocked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_errors: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _run_apt(*args: str) -> str | None:
    """Run one apt-get command; return None on success, else a short reason."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(
            ["apt-get", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`apt-get {' '.join(args)}` did not finish within {_INSTALL_TIMEOUT_S} s"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"`apt-get {' '.join(args)}` failed ({done.returncode}): {' | '.join(tail)}"
    return None


def _install_chromium() -> str:
    """Install Debian's chromium package; return "" on success, else why it was not possible."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "installing it needs root (run `apt-get install -y chromium` as root)"
    # Other test processes may want the browser at the same time: one installs, the rest wait.
    with open(_LOCK_PATH, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if CHROMIUM_PATH.exists():
                return ""
            for step in (("update",), ("install", "-y", "--no-install-recommends", "chromium")):
                reason = _run_apt(*step)
                if reason:
                    return reason
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not CHROMIUM_PATH.exists():
        return f"the chromium package installed but {CHROMIUM_PATH} is still missing"
    return ""


def ensure_chromium() -> Path:
    """Return the Chromium executable, installing it once per session when missing.

    Returns:
        :data:`CHROMIUM_PATH`.

    Raises:
        pytest.skip.Exception: When Chromium is missing and cannot be installed (the reason says
            why and what to do).
    """
    global _install_outcome
    if CHROMIUM_PATH.exists():
        return CHROMIUM_PATH
    if _install_outcome is None:
        _install_outcome = _install_chromium()
    if _install_outcome or not CHROMIUM_PATH.exists():
        pytest.skip(
            f"headless Chromium is not available at {CHROMIUM_PATH} and could not be installed: "
            f"{_install_outcome or 'unknown reason'}. Install the Debian package `chromium`."
        )
    return CHROMIUM_PATH


def launch_chromium(playwright):
    """Launch the system Chromium headless through a started Playwright instance.

    Args:
        playwright: The object returned by ``sync_playwright().start()``.

    Returns:
        A Playwright ``Browser``.
    """
    return playwright.chromium.launch(
        executable_path=str(ensure_chromium()),
        headless=True,
        args=list(CHROMIUM_ARGS),
        timeout=60_000,
    )


def file_url(path: str | os.PathLike) -> str:
    """The ``file://`` URL of a local file."""
    return Path(path).resolve().as_uri()


def _is_offline(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in _OFFLINE_SCHEMES:
        return True
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in _LOCAL_HOSTS


def blocked_requests(page) -> list[str]:
    """URLs the page tried to load from outside the machine (aborted), in order."""
    return list(_blocked.get(page, []))


def page_errors(page) -> list[str]:
    """Uncaught script errors of the page, in order."""
    return list(_errors.get(page, []))


def image_sizes(page, selector: str = "img") -> list[dict]:
    """Natural size and load state of the images matching ``selector``.

    Returns:
        One ``{"alt", "complete", "naturalWidth", "naturalHeight"}`` dict per image.
    """
    return page.eval_on_selector_all(
        selector,
        "els => els.map(e => ({alt: e.alt, complete: e.complete, "
        "naturalWidth: e.naturalWidth, naturalHeight: e.naturalHeight}))",
    )


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    """A headless system Chromium shared by a test module (skips when it is unavailable).

    Per module, not per session: Playwright's sync API keeps an event loop running in the main
    thread while it is started, and Prefect flows run later in the same session would then see
    that loop and hand back coroutines instead of results. Stopping it at the end of each module
    that uses the browser leaves the thread clean for the tests that follow.
    """
    ensure_chromium()
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def chromium_page(chromium_browser) -> Iterator:
    """A fresh offline page (1280 x 900) in its own browser context."""
    context = chromium_browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    blocked: list[str] = []
    errors: list[str] = []
    _blocked[page] = blocked
    _errors[page] = errors

    def route(route) -> None:
        url = route.request.url
        if _is_offline(url):
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
