"""The page at ``/`` in a real headless browser (Chromium from the Debian packages, driven
by Playwright): start a run from the form, watch its tree update live, approve it in the
approval form, see it complete. A screenshot is kept (``$PLAIT_TEST_ARTIFACTS`` or the test's
temporary directory)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from plait_serve import create_app
from tests.serve import served
from tests.serve.conftest import WAIT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _browser() -> Any:
    message = ""
    if not Path(CHROMIUM).exists():
        message = "Chromium is not installed; install it with: apt-get install -y chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            message = "playwright is not installed; install it with: pip install playwright"
    if message:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    return sync_playwright()


def test_start_watch_approve_and_complete_in_the_browser(serve: Any, tmp_path: Path) -> None:
    manager = _browser()
    db = f"sqlite:///{tmp_path / 'page.db'}"
    client = serve(
        create_app([served.approval_workflow(), served.gated_workflow()], storage=db, poll_interval=0.05)
    )
    url = str(client.base_url)
    artifacts = Path(os.environ.get("PLAIT_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    timeout = WAIT * 1000
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url + "/", timeout=timeout)
            page.select_option("#workflow", "announcement", timeout=timeout)
            page.fill("#run-input", "plait 1.0 is out")
            page.click("#start")
            # the run page: the tree fills in live, then the approval form appears
            page.wait_for_selector('.tree .node[data-step="draft"] .s-done', timeout=timeout)
            form = '.pending[data-step="review stage/reviews/legal"]'
            page.wait_for_selector(f"{form} #approve", timeout=timeout)
            assert "May we publish?" in page.inner_text(form)
            assert "null" not in page.inner_text(".card")
            assert page.inner_text('.tree .node[data-step="review stage/reviews/legal"] .badge') == "paused"
            page.screenshot(path=str(artifacts / "serve-page-paused.png"), full_page=True)
            page.click(f"{form} #approve")
            page.wait_for_selector('.tree .node[data-step="publish"] .s-done', timeout=timeout)
            page.wait_for_selector(".card .badge.s-COMPLETED", timeout=timeout)
            assert "published: " in page.inner_text("#run-content")
            assert page.locator(".pending").count() == 0
            page.screenshot(path=str(artifacts / "serve-page-completed.png"), full_page=True)
            # the runs list shows it, and the filter narrows it
            page.goto(url + "/#/?status=COMPLETED", timeout=timeout)
            page.wait_for_selector("tr.run", timeout=timeout)
            assert "Announcement" in page.inner_text("tbody")
            page.goto(url + "/#/?status=PAUSED", timeout=timeout)
            page.wait_for_selector("text=No runs yet.", timeout=timeout)
            assert errors == []
        finally:
            browser.close()
    assert (artifacts / "serve-page-completed.png").stat().st_size > 0
