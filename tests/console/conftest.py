"""Browser tests: Playwright driving Debian's Chromium (never a downloaded browser) against
the API and console served by a real uvicorn on a real PostgreSQL (tests/api/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.api.conftest import api, api_env, tokens  # noqa: F401
from tests.mpi.conftest import database_url, server_url  # noqa: F401

CHROMIUM = "/usr/bin/chromium"  # `make test` installs it when missing
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
# MEDMATCH_CONSOLE_SCREENSHOTS=docs refreshes the README's pictures; otherwise they go to tmp
SCREENSHOTS = os.environ.get("MEDMATCH_CONSOLE_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Browser:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs it (apt-get)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console(browser, api):  # noqa: F811
    """Open the console in a fresh browser context (its own sessionStorage), signed in with
    `token` when given. Any script error or policy violation on a page fails the test."""
    contexts, errors = [], []

    def open_console(token: str | None = None) -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.goto(f"{api.base}/console/")
        if token:
            sign_in(page, token)
            expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
        return page

    yield open_console
    for context in contexts:
        context.close()
    # Chromium logs every 4xx answer; the tests provoke some (401, 404, 409, 422) on purpose
    answered = "the server responded with a status of 4"
    assert [e for e in errors if answered not in e] == []


def sign_in(page: Page, token: str) -> None:
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def screenshot(tmp_path):
    def save(page: Page, name: str) -> Path:
        folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        page.screenshot(path=str(path))
        return path

    return save
