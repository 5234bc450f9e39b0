"""Headless Chromium for the UI tests: Debian's `chromium` driven by Playwright, which then
downloads no browser of its own. `make test` installs the package where apt can; without it the
UI test is skipped, unless AIQ_REQUIRE_BROWSER=1 (CI) makes that a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def chromium_executable() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


@contextmanager
def headless_chromium(width: int = 1400, height: int = 900) -> Iterator[Page]:
    executable = chromium_executable()
    if executable is None:
        message = "no Chromium on this machine (apt-get install chromium)"
        if os.environ.get("AIQ_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(30_000)
            yield page
        finally:
            browser.close()
