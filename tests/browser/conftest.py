"""Real-browser fixtures: the dashboard served by `streamlit run` on a free port, and a headless Chromium page.

Skipped when the system chromium (/usr/bin/chromium, installed by `.ci/run`) is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the dashboard did not answer {url}/_stcore/health within {timeout:g}s")


@contextmanager
def serving(db: Path, artifacts_dir: Path, launcher: list[str], env: dict[str, str] | None = None) -> Iterator[dict]:
    """The dashboard served by `launcher run app.py` on a free port against `db`: {"url", "db", "artifacts"}."""
    if not CHROMIUM.exists():
        pytest.skip("system chromium is not installed (/usr/bin/chromium)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (artifacts_dir / f"streamlit-{port}.log").open("w")
    env = os.environ | {"CAMPAIGNS_DB": str(db), "PYTHONUNBUFFERED": "1"} | (env or {})
    process = subprocess.Popen(
        [*launcher, "run", str(ROOT / "dashboards" / "app.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(url, process)
        yield {"url": url, "db": db, "artifacts": artifacts_dir}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def dashboard(db, artifacts_dir):
    """The dashboard served on a free port against the test database: {"url", "db", "artifacts"}."""
    with serving(db, artifacts_dir, [sys.executable, "-m", "streamlit"]) as served:
        yield served


@pytest.fixture
def page(dashboard):
    """A headless Chromium page (1400×1000) with a helper `wait_ready()` for the app to finish running."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)

        def wait_ready() -> None:
            page.wait_for_timeout(300)  # let a click start its rerun before waiting for the end
            page.wait_for_selector(READY, timeout=30_000)

        page.wait_ready = wait_ready  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            browser.close()


# Elements (not chart SVG) whose text is cut: drawn with an ellipsis, or a one-line box narrower than its text.
_CLIPPED_JS = """() => [...document.querySelectorAll('[data-testid=stMain] *')].filter(e => {
    if (e instanceof SVGElement || e.closest('[data-testid=stIconMaterial]') || !e.innerText || !e.innerText.trim() || e.clientWidth <= 2) return false;  // 1 px: text for screen readers only
    const style = getComputedStyle(e);
    const oneLine = style.whiteSpace === 'nowrap' || style.whiteSpace === 'pre';
    return e.scrollWidth > e.clientWidth + 1 && (style.textOverflow === 'ellipsis' || (oneLine && style.overflowX === 'hidden'));
}).map(e => e.innerText.trim().split('\\n')[0])"""


def clipped_texts(page) -> list[str]:
    """The texts on the page's main area that are cut off (an ellipsis or a hidden overflow), first line each."""
    return page.evaluate(_CLIPPED_JS)
