"""A real browser for the console's tests: Playwright driving Debian's Chromium.

Without /usr/bin/chromium the tests are skipped with the reason, unless
INCMAN_REQUIRE_BROWSER=1 (CI), where a missing browser fails them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000  # a busy machine: every wait is for an event, this only bounds it


def need_browser() -> None:
    """Skip (or fail, with INCMAN_REQUIRE_BROWSER=1) when the browser cannot run here."""
    reason = ""
    if not os.access(CHROMIUM, os.X_OK):
        reason = (
            f"{CHROMIUM} is not installed (apt-get install chromium, or deploy/install-chromium.sh)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -e '.[test]')"
    if reason:
        if os.environ.get("INCMAN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"INCMAN_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def launch(profile: Path) -> Iterator[Any]:
    """A Chromium browser context on a fresh profile folder, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def artifacts_dir(base: Path) -> Path:
    """Where screenshots go: INCMAN_TEST_ARTIFACTS, else the test run's output folder."""
    folder = Path(os.environ.get("INCMAN_TEST_ARTIFACTS") or base) / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def csrf_of(page: Any) -> str:
    """The session's CSRF token, as the page's forms carry it."""
    return str(page.locator('input[name="csrf_token"]').first.get_attribute("value"))


def sign_in(page: Any, base: str, user: str = "", password: str = "", key: str = "") -> None:
    """Sign in through the sign-in page (by password, or by API key)."""
    page.context.clear_cookies()
    page.goto(f"{base}/console/events")
    if key:
        page.fill("#api-key", key)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in with the key").click()
    else:
        page.fill("#username", user)
        page.fill("#password", password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in", exact=True).click()
    assert "/console/events" in page.url, page.url


def submit(page: Any, locator: Any) -> None:
    """Click a submit button and wait for the page that answers."""
    with page.expect_navigation():
        locator.click()


def flash_text(page: Any) -> str:
    found = page.locator("#flash")
    return str(found.inner_text()) if found.count() else ""
