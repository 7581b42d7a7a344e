"""The plait-serve HTTP API through a real uvicorn server and httpx."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from plait_serve import create_app
from tests.serve import served
from tests.serve.conftest import WAIT, sse


def _until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _status(client: httpx.Client, run_id: str) -> str:
    status: str = client.get(f"/api/runs/{run_id}").json()["run"]["status"]
    return status


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'serve.db'}"


def test_workflows_are_listed_with_schema_and_graph(serve: Any, db: str) -> None:
    client = serve(create_app([served.approval_workflow(), served.typed_workflow()], storage=db))
    listed = {w["id"]: w for w in client.get("/api/workflows").json()["workflows"]}
    assert set(listed) == {"announcement", "typed"}
    announcement = listed["announcement"]
    assert announcement["description"] == "drafts, waits for legal, publishes"
    assert announcement["mermaid"].startswith("flowchart TD")
    kinds = {n["id"]: n["kind"] for n in announcement["graph"]["nodes"]}
    assert kinds["review stage/reviews/legal"] == "approval"
    assert listed["typed"]["input_schema"]["properties"]["topic"]["type"] == "string"
    openapi = client.get("/openapi.json").json()
    assert "/api/runs/{run_id}/approve" in openapi["paths"]


def test_start_in_background_then_stream_and_resume_with_last_event_id(serve: Any, db: str) -> None:
    served.GATE.clear()
    client = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    started = client.post(
        "/api/workflows/gated/runs", json={"input": "go", "session_id": "s1", "user_id": "ann"}
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    first: list[dict[str, Any]] = []
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse(response):
            first.append(event)
            if event["event"] == "StepStarted" and event["data"]["step_name"] == "held":
                break  # disconnect while the run waits at the gate
    assert [e["id"] for e in first] == [str(i) for i in range(1, len(first) + 1)]
    assert first[0]["event"] == "WorkflowStarted" and first[0]["data"]["run_id"] == run_id
    assert _status(client, run_id) == "RUNNING"
    served.GATE.set()
    last = first[-1]["id"]
    with client.stream("GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": last}) as response:
        rest = list(sse(response))
    assert rest and int(rest[0]["id"]) == int(last) + 1  # only later events
    assert [e["event"] for e in rest][-1] == "WorkflowCompleted"
    assert {e["data"].get("step_name") for e in rest} >= {"held", "last"}
    # every event once, in order, whether read live or from the storage
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        whole = list(sse(response))
    assert [e["id"] for e in whole] == [e["id"] for e in first + rest]
    record = client.get(f"/api/runs/{run_id}").json()
    assert record["run"]["status"] == "COMPLETED" and record["run"]["user_id"] == "ann"
    assert [s["step_id"] for s in record["steps"]] == ["first", "held", "last"]
    listed = client.get(
        "/api/runs", params={"session_id": "s1", "user_id": "ann", "status": "completed"}
    ).json()
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    assert client.get("/api/runs", params={"session_id": "other"}).json()["runs"] == []


def test_start_with_stream_answers_sse(serve: Any, db: str) -> None:
    served.GATE.set()
    client = serve(create_app([served.gated_workflow()], storage=db))
    with client.stream("POST", "/api/workflows/Gated/runs?stream=true", json={"input": "x"}) as response:
        assert response.status_code == 200
        events = list(sse(response))
    names = [e["event"] for e in events]
    assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted"
    assert events[-1]["data"]["content"] == "three"


def test_approve_over_http_a_run_paused_in_a_nested_parallel(serve: Any, db: str) -> None:
    client = serve(create_app([served.approval_workflow()], storage=db, poll_interval=0.05))
    run_id = client.post("/api/workflows/announcement/runs", json={"input": "plait 1.0"}).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        events = list(sse(response))
    assert events[-1]["event"] == "WorkflowPaused"  # the stream ends at the pause
    paused = client.get(f"/api/runs/{run_id}").json()
    assert paused["run"]["status"] == "PAUSED"
    assert [p["step_id"] for p in paused["pending"]] == ["review stage/reviews/legal"]
    # a wrong answer is refused and leaves the run as it was
    wrong = client.post(f"/api/runs/{run_id}/approve", json={"approve": True, "step": "nope"})
    assert wrong.status_code == 422 and "nope" in wrong.json()["error"]["message"]
    assert _status(client, run_id) == "PAUSED"
    answered = client.post(f"/api/runs/{run_id}/approve", json={"approve": True, "step": "legal"})
    assert answered.status_code == 202, answered.text
    with client.stream(
        "GET", f"/api/runs/{run_id}/events", headers={"Last-Event-ID": events[-1]["id"]}
    ) as response:
        after = list(sse(response))
    assert after[-1]["event"] == "WorkflowCompleted"
    assert after[-1]["data"]["content"].startswith("published:")
    assert _until(lambda: _status(client, run_id) == "COMPLETED", "the run to complete")
    # read from the start, the stream goes past the pause to the end
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        names = [e["event"] for e in sse(response)]
    assert "WorkflowPaused" in names and names[-1] == "WorkflowCompleted"
    assert names.index("WorkflowPaused") < len(names) - 1
    again = client.post(f"/api/runs/{run_id}/approve", json={"approve": True})
    assert again.status_code == 409 and again.json()["error"]["type"] == "not_paused"


def test_cancel_and_errors(serve: Any, db: str) -> None:
    served.GATE.clear()
    client = serve(create_app([served.gated_workflow(), served.typed_workflow()], storage=db))
    run_id = client.post("/api/workflows/gated/runs", json={"input": "x"}).json()["run_id"]
    cancelled = client.post(f"/api/runs/{run_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    served.GATE.set()
    assert _until(lambda: _status(client, run_id) == "CANCELLED", "the run to be cancelled")
    assert client.post(f"/api/runs/{run_id}/cancel").status_code == 409
    resumed = client.post(f"/api/runs/{run_id}/resume")
    assert resumed.status_code == 202
    assert _until(lambda: _status(client, run_id) == "COMPLETED", "the resumed run to complete")
    # input that does not match the schema: refused, and no run stored
    before = len(client.get("/api/runs").json()["runs"])
    bad = client.post("/api/workflows/typed/runs", json={"input": {"words": "many"}})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "invalid_input"
    assert "Topic" in bad.json()["error"]["message"]
    assert len(client.get("/api/runs").json()["runs"]) == before
    good = client.post("/api/workflows/typed/runs?stream=true", json={"input": {"topic": "tea", "words": 3}})
    assert good.status_code == 200 and "tea in 3 words" in good.text
    missing = client.get("/api/runs/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert client.post("/api/workflows/nope/runs", json={}).status_code == 404
    assert client.get("/api/runs", params={"status": "sleepy"}).status_code == 422
    assert client.get("/api/runs/nope/events").status_code == 404


def test_malformed_and_oversized_bodies(serve: Any, db: str) -> None:
    client = serve(create_app([served.gated_workflow()], storage=db, body_limit=1000))
    malformed = client.post(
        "/api/workflows/gated/runs", content=b'{"input": ', headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["type"] == "invalid_json"
    unknown = client.post("/api/workflows/gated/runs", json={"inptu": "x"})
    assert unknown.status_code == 422 and "inptu" in unknown.json()["error"]["message"]
    big = client.post("/api/workflows/gated/runs", json={"input": "x" * 2000})
    assert big.status_code == 413 and big.json()["error"]["type"] == "body_too_large"

    def chunks() -> Any:  # no Content-Length: the limit counts what arrives
        for _ in range(20):
            yield b"x" * 100

    chunked = client.post(
        "/api/workflows/gated/runs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    assert client.get("/api/runs").json()["runs"] == []  # nothing was started


def test_token_required_when_configured(serve: Any, db: str) -> None:
    app = create_app([served.gated_workflow()], storage=db, token="s3cret-token-value")
    client = serve(app)
    for path in ("/api/workflows", "/api/runs", "/openapi.json", "/docs", "/ui/../api/runs"):
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["type"] == "unauthorized"
        assert "s3cret" not in refused.text
    assert client.get("/api/workflows", headers={"Authorization": "Bearer wrong"}).status_code == 401
    allowed = client.get("/api/workflows", headers={"Authorization": "Bearer s3cret-token-value"})
    assert allowed.status_code == 200
    # the page's files hold no data: a browser opens them without the header, then the page sends it
    assert client.get("/").status_code == 200 and client.get("/ui/app.js").status_code == 200
    assert client.get("/ui/graph.js").status_code == 200
    assert client.post("/").status_code == 401


def test_the_page_and_its_files_are_served(serve: Any, db: str) -> None:
    client = serve(create_app([served.gated_workflow()], storage=db))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="ui/app.js"' in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
    script = client.get("/ui/app.js")
    assert script.status_code == 200 and "api/runs" in script.text and "Last-Event-ID" in script.text
    assert client.get("/ui/app.css").status_code == 200
    graph = client.get("/ui/graph.js")
    assert graph.status_code == 200 and "PlaitGraph" in graph.text
    for shipped in (script.text, graph.text.replace("http://www.w3.org/2000/svg", "")):
        assert "http" not in shipped and "import(" not in shipped  # nothing fetched from elsewhere


def test_cors_is_off_unless_configured(serve: Any, db: str) -> None:
    closed = serve(create_app([served.gated_workflow()], storage=db))
    assert (
        "access-control-allow-origin"
        not in closed.get("/api/runs", headers={"Origin": "http://x.test"}).headers
    )
    opened = serve(create_app([served.gated_workflow()], storage=db, cors_origins=["http://x.test"]))
    answer = opened.get("/api/runs", headers={"Origin": "http://x.test"})
    assert answer.headers["access-control-allow-origin"] == "http://x.test"


def test_mounted_in_another_app(serve: Any, db: str) -> None:
    from fastapi import FastAPI

    outer = FastAPI()

    @outer.get("/health")
    def health() -> dict[str, str]:
        return {"ok": "yes"}

    outer.mount("/plait", create_app([served.approval_workflow()], storage=db, poll_interval=0.05))
    client = serve(outer)
    assert client.get("/health").json() == {"ok": "yes"}
    assert [w["id"] for w in client.get("/plait/api/workflows").json()["workflows"]] == ["announcement"]
    run_id = client.post("/plait/api/workflows/announcement/runs", json={"input": "x"}).json()["run_id"]
    with client.stream("GET", f"/plait/api/runs/{run_id}/events") as response:
        assert [e["event"] for e in sse(response)][-1] == "WorkflowPaused"
    assert client.post(f"/plait/api/runs/{run_id}/approve", json={"approve": True}).status_code == 202
    assert _until(
        lambda: client.get(f"/plait/api/runs/{run_id}").json()["run"]["status"] == "COMPLETED", "completion"
    )
    assert 'src="ui/app.js"' in client.get("/plait/").text
    assert client.get("/plait/ui/app.js").status_code == 200
    assert client.get("/plait/ui/graph.js").status_code == 200


def test_fork_a_stored_run_over_http(serve: Any, db: str) -> None:
    served.GATE.set()
    client = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    with client.stream("POST", "/api/workflows/gated/runs?stream=true", json={"input": "x"}) as response:
        whole = list(sse(response))  # to the end: the run has completed
    original = whole[0]["data"]["run_id"]
    forked = client.post(f"/api/runs/{original}/fork", json={"at": "last", "output": "changed"})
    assert forked.status_code == 202, forked.text
    new_id = forked.json()["run_id"]
    assert new_id != original
    with client.stream("GET", f"/api/runs/{new_id}/events") as response:
        events = list(sse(response))
    assert events[-1]["event"] == "WorkflowCompleted" and events[-1]["data"]["content"] == "changed"
    run = _until(
        lambda: (r := client.get(f"/api/runs/{new_id}").json()["run"])["status"] == "COMPLETED" and r, "fork"
    )
    assert run["lineage"]["forked_from"] == original
    wrong = client.post(f"/api/runs/{original}/fork", json={"at": "nowhere"})
    assert wrong.status_code == 422 and "nowhere" in wrong.json()["error"]["message"]


def test_replay_a_stored_run_over_http(serve: Any, db: str) -> None:
    served.GATE.set()
    client = serve(create_app([served.gated_workflow()], storage=db, poll_interval=0.05))
    with client.stream("POST", "/api/workflows/gated/runs?stream=true", json={"input": "x"}) as response:
        events = list(sse(response))  # to the end
    original = events[0]["data"]["run_id"]
    _until(lambda: _status(client, original) == "COMPLETED", "the run to complete")
    served.GATE.clear()  # the replay runs in the background: it waits at the gate too
    replayed = client.post(f"/api/runs/{original}/replay")
    assert replayed.status_code == 202, replayed.text
    body = replayed.json()
    assert body["replay_of"] == original and body["run_id"] != original and body["status"] == "RUNNING"
    assert _status(client, body["run_id"]) == "RUNNING"  # answered before the replay ended
    served.GATE.set()
    with client.stream("GET", f"/api/runs/{body['run_id']}/events") as response:
        names = [event["event"] for event in sse(response)]
    assert names[0] == "WorkflowStarted" and names[-1] == "WorkflowCompleted", names
    _until(lambda: _status(client, body["run_id"]) == "COMPLETED", "the replay to complete")
    stored = client.get(f"/api/runs/{body['run_id']}").json()
    assert stored["run"]["lineage"] == {"replay_of": original} and stored["run"]["content"] == "three"
    assert [s["step_id"] for s in stored["steps"]] == ["first", "held", "last"]
    assert client.post(f"/api/runs/{original}/replay", json={"live": "sometimes"}).status_code == 422
    assert client.post(f"/api/runs/{original}/replay", json={"lve": True}).status_code == 422
    missing = client.post("/api/runs/nope/replay")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    served.GATE.clear()
    running = client.post("/api/workflows/gated/runs", json={"input": "y"}).json()["run_id"]
    refused = client.post(f"/api/runs/{running}/replay")
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "run_executing"
    served.GATE.set()
    _until(lambda: _status(client, running) == "COMPLETED", "the second run to complete")
    assert len(client.get("/api/runs").json()["runs"]) == 3  # the refused replay stored nothing


def test_an_answer_that_does_not_fit_the_form_leaves_the_run_paused(serve: Any, db: str) -> None:
    client = serve(create_app([served.review_workflow()], storage=db, poll_interval=0.05))
    run_id = client.post("/api/workflows/review/runs", json={"input": "x"}).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert [e["event"] for e in sse(response)][-1] == "WorkflowPaused"
    pending = client.get(f"/api/runs/{run_id}").json()["pending"]
    assert pending[0]["kind"] == "input" and pending[0]["schema"]["required"] == ["title"]
    wrong = client.post(
        f"/api/runs/{run_id}/approve", json={"approve": True, "answers": {"details": {"words": "many"}}}
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["type"] == "invalid_answer"
    assert "Details" in wrong.json()["error"]["message"] and "title" in wrong.json()["error"]["message"]
    assert _status(client, run_id) == "PAUSED"
    good = {"details": {"title": "T", "words": 3, "tone": "warm", "tags": ["a"]}}
    assert (
        client.post(f"/api/runs/{run_id}/approve", json={"approve": True, "answers": good}).status_code == 202
    )
    _until(
        lambda: (
            client.get(f"/api/runs/{run_id}").json()["pending"][:1]
            and _status(client, run_id) == "PAUSED"
            and client.get(f"/api/runs/{run_id}").json()["pending"][0]["step_id"] == "channel"
        ),
        "the choice",
    )
    bad_choice = client.post(
        f"/api/runs/{run_id}/approve", json={"approve": True, "answers": {"channel": "fax"}}
    )
    assert bad_choice.status_code == 422 and "blog" in bad_choice.json()["error"]["message"]
    assert (
        client.post(
            f"/api/runs/{run_id}/approve", json={"approve": True, "answers": {"channel": "blog"}}
        ).status_code
        == 202
    )
    _until(lambda: _status(client, run_id) == "COMPLETED", "the run to complete")
    assert client.get(f"/api/runs/{run_id}").json()["run"]["content"] == (
        "T: 3 words, warm, urgent=False, tags=['a'], to blog"
    )


def test_concurrent_approvals_continue_the_run_once(serve: Any, db: str) -> None:
    import threading

    client = serve(create_app([served.approval_workflow()], storage=db, poll_interval=0.05))
    run_id = client.post("/api/workflows/announcement/runs", json={"input": "x"}).json()["run_id"]
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        assert [e["event"] for e in sse(response)][-1] == "WorkflowPaused"
    answers: list[httpx.Response] = []

    def approve() -> None:
        answers.append(client.post(f"/api/runs/{run_id}/approve", json={"approve": True}))

    threads = [threading.Thread(target=approve) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [a.text for a in answers]
    assert all(
        # an approval that read PAUSED just before the winner's run ended finds it ended
        a.json()["error"]["type"] in ("not_paused", "run_executing", "run_claimed", "run_ended")
        for a in answers
        if a.status_code == 409
    )
    _until(lambda: _status(client, run_id) == "COMPLETED", "the run to complete")
    with client.stream("GET", f"/api/runs/{run_id}/events") as response:
        events = list(sse(response))
    assert [e["event"] for e in events].count("WorkflowCompleted") == 1
    published = [e for e in events if e["event"] == "StepCompleted" and e["data"]["step_name"] == "publish"]
    assert len(published) == 1  # the steps after the approval ran once


def test_one_app_served_twice_at_once_and_again(serve: Any, db: str) -> None:
    import threading

    app = create_app([served.gated_workflow()], storage=db, poll_interval=0.05)
    for round in range(2):  # two servers (two event loops) on one app, then two more
        first, second = serve(app), serve(app)
        served.GATE.clear()
        run_id = first.post("/api/workflows/gated/runs", json={"input": round}).json()["run_id"]
        threading.Timer(0.3, served.GATE.set).start()
        for client in (second, first):  # each follows it while it waits at the gate
            with client.stream("GET", f"/api/runs/{run_id}/events") as response:
                events = list(sse(response))
            assert events[-1]["event"] == "WorkflowCompleted", events[-1]
        assert first.get(f"/api/runs/{run_id}").json()["run"]["status"] == "COMPLETED"


def test_a_replay_that_diverges_ends_as_error_with_the_difference(serve: Any, db: str) -> None:
    from plait import Agent, Step, Workflow
    from plait.testing import FunctionModel

    agent = Agent(
        name="Writer", model=FunctionModel(lambda messages: "a haiku"), instructions="Write a haiku."
    )
    workflow = Workflow(name="Writing", steps=[Step(name="write", agent=agent)])
    client = serve(create_app([workflow], storage=db, poll_interval=0.05))
    with client.stream("POST", "/api/workflows/writing/runs?stream=true", json={"input": "tea"}) as response:
        original = next(iter(sse(response)))["data"]["run_id"]
    _until(lambda: _status(client, original) == "COMPLETED", "the run to complete")
    agent.instructions = ["Write a limerick."]  # the code changed: the recorded request no longer matches
    replayed = client.post(f"/api/runs/{original}/replay")
    assert replayed.status_code == 202, replayed.text
    new_id = replayed.json()["run_id"]
    with client.stream("GET", f"/api/runs/{new_id}/events") as response:
        names = [event["event"] for event in sse(response)]
    assert names[-1] == "WorkflowError", names
    run = _until(
        lambda: (r := client.get(f"/api/runs/{new_id}").json()["run"])["status"] == "ERROR" and r, "ERROR"
    )
    assert "write" in run["error"] and "limerick" in run["error"], run["error"]
    assert run["lineage"] == {"replay_of": original}
    live = client.post(f"/api/runs/{original}/replay", json={"live": True}).json()["run_id"]
    _until(lambda: _status(client, live) == "COMPLETED", "the live replay to complete")
