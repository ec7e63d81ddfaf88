"""Pytest plugin: the system's Chromium, headless, driven by Playwright.

Chromium comes from the machine (`apt-get install chromium`; `.ci/run` installs it), never
downloaded by Playwright. The flags keep it off the network this workplace does not have.
Screenshots go to `test-artifacts/`.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BROWSER = Path(os.environ.get("GATEWAY_BROWSER", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium. Start it only once the test's data is stored: Playwright's sync
    API runs an event loop on this thread, after which Django refuses ORM calls here."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(BROWSER), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(config, items) -> None:
    if BROWSER.exists():
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {BROWSER} (apt-get install chromium, or set GATEWAY_BROWSER)")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)
