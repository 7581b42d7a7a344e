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


@pytest.mark.slow
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


@pytest.mark.slow
def test_graph_forms_fork_and_replay_in_the_browser(serve: Any, tmp_path: Path) -> None:
    manager = _browser()
    db = f"sqlite:///{tmp_path / 'forms.db'}"
    client = serve(create_app([served.review_workflow()], storage=db, poll_interval=0.05))
    url = str(client.base_url)
    graph = client.get("/api/workflows").json()["workflows"][0]["graph"]
    artifacts = Path(os.environ.get("PLAIT_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    timeout = WAIT * 1000
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url + "/", timeout=timeout)
            page.fill("#run-input", "the launch")
            page.click("#start")
            form = '.pending[data-step="details"]'
            page.wait_for_selector(f"{form} #submit-answer", timeout=timeout)
            original = page.evaluate("location.hash").removeprefix("#/runs/")
            # the graph is drawn: a box for every node of to_graph(), done / current marked
            for node in graph["nodes"]:
                assert page.locator(f'#graph svg [data-step="{node["id"]}"]').count() == 1, node["id"]
            page.wait_for_selector('#graph [data-step="draft"].st-done', timeout=timeout)
            assert page.locator('#graph [data-step="details"].current').count() == 1
            assert (
                page.locator('#graph [data-step="long enough/pad"].st-done').count() == 0
            )  # else: not taken
            labels = page.locator("#graph text.edge-label").all_text_contents()
            assert "then" in labels and "else" in labels
            page.locator("#graph").scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "serve-graph.png"))
            # the form is built from the approval's schema: one field per property, defaults filled
            assert page.get_attribute("#answer-title", "type") == "text"
            assert page.input_value("#answer-words") == "100"
            assert page.get_attribute("#answer-urgent", "type") == "checkbox"
            assert page.locator("#answer-tone option").all_inner_texts() == ["plain", "warm"]
            assert "the headline" in page.inner_text(form)
            assert (
                page.get_attribute("#answer-due", "placeholder") == "2026-12-24T18:00:00"
            )  # optional: left empty
            page.fill("#answer-title", "Plait 1.0")
            page.fill("#answer-tags", "not json")
            page.click(f"{form} #submit-answer")
            assert "tags: expected JSON" in page.inner_text(f"{form} .error")
            page.fill("#answer-tags", '"one tag"')  # JSON, but not a list: the server says so
            page.click(f"{form} #submit-answer")
            page.wait_for_selector(f"{form} .error:has-text('Details')", timeout=timeout)
            run = client.get(f"/api/runs/{original}").json()
            assert run["run"]["status"] == "PAUSED" and [p["step_id"] for p in run["pending"]] == ["details"]
            page.fill("#answer-tags", '["launch", "ai"]')
            page.fill("#answer-words", "250")
            page.check("#answer-urgent")
            page.select_option("#answer-tone", label="warm")
            page.locator(form).scroll_into_view_if_needed()
            page.screenshot(path=str(artifacts / "serve-form.png"))
            page.click(f"{form} #submit-answer")
            choice = '.pending[data-step="channel"] .choice[data-choice="newsletter"]'
            page.wait_for_selector(choice, timeout=timeout)
            assert page.locator('.pending[data-step="channel"] .choice').all_inner_texts() == [
                "blog",
                "newsletter",
            ]
            page.screenshot(path=str(artifacts / "serve-choice.png"))
            page.click(choice)
            page.wait_for_selector(".card .badge.s-COMPLETED", timeout=timeout)
            content = page.inner_text("#run-content")
            assert content == "Plait 1.0: 250 words, warm, urgent=True, tags=['launch', 'ai'], to newsletter"
            page.wait_for_selector('#graph [data-step="publish"].st-done', timeout=timeout)
            assert page.locator("#graph .current").count() == 0
            # the tree in the workflow's order: a container before its steps
            shown = page.eval_on_selector_all(".tree .node", "nodes => nodes.map(n => n.dataset.step)")
            assert shown == [
                "draft",
                "polish",
                "polish[1]",
                "polish[1]/refine",
                "long enough",
                "long enough/trim",
                "details",
                "channel",
                "publish",
            ]
            # fork at the last step with another output: a new run, linked to this one
            page.click("#fork")
            page.select_option("#fork-at", "publish")
            page.select_option("#fork-what", "output")
            page.fill("#fork-value", "forked ending")
            page.click("#fork-go")
            page.wait_for_function(f"!location.hash.endsWith({original!r})", timeout=timeout)
            page.wait_for_selector(".card .badge.s-COMPLETED", timeout=timeout)
            assert page.inner_text("#run-content") == "forked ending"
            assert f"forked at publish from {original[:8]}" in page.inner_text(".card")
            # replay the original: a new run of the current code; it asks the person again
            page.goto(f"{url}/#/runs/{original}", timeout=timeout)
            page.wait_for_selector("#replay:not([disabled])", timeout=timeout)
            page.click("#replay")
            page.wait_for_selector(f"text=replay of {original[:8]}", timeout=timeout)
            page.wait_for_selector(".card .badge.s-PAUSED", timeout=timeout)
            page.wait_for_selector('.tree .node[data-step="draft"] .s-done', timeout=timeout)
            page.wait_for_selector('.pending[data-step="details"] #submit-answer', timeout=timeout)
            page.screenshot(path=str(artifacts / "serve-replay.png"))
            assert errors == []
        finally:
            browser.close()
    runs = {r["run_id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert len(runs) == 3
    assert sorted(str(r["lineage"]) for r in runs.values() if r["run_id"] != original) == sorted(
        [str({"forked_from": original, "fork_step": "publish"}), str({"replay_of": original})]
    )


@pytest.mark.slow
def test_the_page_follows_a_run_another_server_executes(serve: Any, tmp_path: Path) -> None:
    manager = _browser()
    db = f"sqlite:///{tmp_path / 'two.db'}"
    served.GATE.clear()
    executing = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    watching = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    run_id = executing.post("/api/workflows/gated/runs", json={"input": "x"}).json()["run_id"]
    artifacts = Path(os.environ.get("PLAIT_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    timeout = WAIT * 1000
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{watching.base_url}/#/runs/{run_id}", timeout=timeout)
            # live from the other server's stored events: the held step runs, the last has not
            page.wait_for_selector('.tree .node[data-step="held"] .s-running', timeout=timeout)
            page.wait_for_selector('#graph [data-step="held"].current', timeout=timeout)
            assert page.locator('.tree .node[data-step="last"]').count() == 0
            assert page.inner_text(".card .badge") == "running"
            page.screenshot(path=str(artifacts / "serve-other-server.png"))
            served.GATE.set()
            page.wait_for_selector('.tree .node[data-step="last"] .s-done', timeout=timeout)
            page.wait_for_selector(".card .badge.s-COMPLETED", timeout=timeout)
            assert page.inner_text("#run-content") == "three"
            assert errors == []
        finally:
            served.GATE.set()
            browser.close()


#: the boxes of the graph's steps (not containers) as [id, x, y, width, height]
_LEAVES = """svg => [...svg.querySelectorAll('g.g-node')].filter(g => !g.querySelector('rect.frame'))
  .map(g => { const r = g.querySelector('rect').getBBox(); return [g.dataset.step, r.x, r.y, r.width, r.height]; })"""


@pytest.mark.slow
def test_the_graph_draws_every_container(serve: Any, tmp_path: Path) -> None:
    manager = _browser()
    client = serve(create_app([served.shapes_workflow()], storage=f"sqlite:///{tmp_path / 'g.db'}"))
    graph = client.get("/api/workflows").json()["workflows"][0]["graph"]
    timeout = WAIT * 1000
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{client.base_url}/", timeout=timeout)
            page.click("#start")
            page.wait_for_selector('.pending[data-step="length"] .choice', timeout=timeout)
            page.wait_for_selector('#graph [data-step="pick/tech writer"].st-done', timeout=timeout)
            kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
            for step_id, kind in kinds.items():
                assert page.locator(f'#graph g.k-{kind}[data-step="{step_id}"]').count() == 1, step_id
            labels = page.locator("#graph text.edge-label").all_text_contents()
            assert sorted(labels) == ["choice", "choice", "long", "short"]
            assert page.locator('#graph [data-step="pick/business writer"].st-done').count() == 0
            assert page.locator('#graph [data-step="length"].current').count() == 1
            leaves = page.eval_on_selector("#graph svg", _LEAVES)
            assert {leaf[0] for leaf in leaves} == {i for i in kinds if not graph_children(graph, i)}
            for i, (a, ax, ay, aw, ah) in enumerate(leaves):  # no two steps' boxes overlap
                for b, bx, by, bw, bh in leaves[i + 1 :]:
                    apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
                    assert apart, (a, b)
            width = page.eval_on_selector("#graph svg", "svg => svg.getBoundingClientRect().width")
            assert width < 1100  # it fits the card at 1280 pixels
        finally:
            browser.close()


def graph_children(graph: dict[str, Any], step_id: str) -> list[str]:
    return next(n["children"] for n in graph["nodes"] if n["id"] == step_id)
