"""Headless Chromium for the browser tests: where it is, the page sizes, where pictures go."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .services import ROOT, need_service

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts" / "ui"
DOCS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "pw-for-tests-only"


def screenshot_dir() -> Path:
    """docs/screenshots/ when UPDATE_DOCS_SCREENSHOTS is set, else test-artifacts/ui/:
    a test run never rewrites the committed pictures by itself."""
    target = DOCS if os.environ.get("UPDATE_DOCS_SCREENSHOTS") else ARTIFACTS
    target.mkdir(parents=True, exist_ok=True)
    return target


def launch_chromium() -> Iterator:
    """A Playwright Chromium browser; skips (laptop) or fails (CI) when there is none."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        need_service("Chromium", f"no browser at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("Chromium", "Playwright for Python is not installed")
    # Playwright's sync API keeps an event loop running in this thread; Django's ORM calls
    # in the test (not in the server) are still synchronous, so let them through.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
