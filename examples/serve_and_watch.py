"""Serve a workflow over HTTP and drive it as a client would (needs plait-serve).

From a shell, the same server is one command, and the page's API is at /api:

    plait serve examples/human_approval.py:workflow          # http://127.0.0.1:8000/docs

Here the app runs in this process (uvicorn in a thread, on a free port) and httpx plays the
client: start a run, follow its events over Server-Sent Events until it pauses for approval,
approve it, follow it again from the last event seen (Last-Event-ID) until it completes;
then replay it.
"""

import json
import os
import socket
import threading
import time

import httpx
import uvicorn
from demo_models import demo_model

from plait import Agent, Approval, Parallel, Step, Workflow
from plait_serve import create_app

workflow = Workflow(
    name="Announcement",
    steps=[
        Step(
            name="draft",
            agent=Agent(name="Writer", model=demo_model(), instructions="Write a short announcement."),
        ),
        Parallel(
            Step(name="fact check", executor=lambda step_input: "no claims without a source"),
            Approval(name="legal", prompt="Legal: may we publish this draft?", on_reject="stop"),
            name="reviews",
        ),
        Step(name="publish", executor=lambda step_input: f"Published after: {', '.join(step_input.message)}"),
    ],
)


def follow(client: httpx.Client, run_id: str, last: str | None = None) -> str | None:
    """Print the run's events as they come; return the id of the last one."""
    headers = {"Last-Event-ID": last} if last else {}
    with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as response:
        for line in response.iter_lines():
            if line.startswith("id:"):
                last = line[3:].strip()
            elif line.startswith("data:"):
                event = json.loads(line[5:])
                print(f"  [{last}] {event['event']} {event.get('step_id') or ''}".rstrip())
    return last


def main() -> None:
    storage = os.environ.get("PLAIT_STORAGE") or "sqlite:///.plait/plait.db"
    app = create_app([workflow], storage=storage)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        run_id = client.post("/api/workflows/announcement/runs", json={"input": "plait 1.0 is out"}).json()[
            "run_id"
        ]
        last = follow(client, run_id)
        run = client.get(f"/api/runs/{run_id}").json()
        print(f"status: {run['run']['status']}; waiting at {[p['step_id'] for p in run['pending']]}")
        client.post(f"/api/runs/{run_id}/approve", json={"approve": True})
        follow(client, run_id, last)
        done = client.get(f"/api/runs/{run_id}").json()["run"]
        print(f"status: {done['status']}; content: {done['content']}")
        # the same run again under the current code, the model's answers from its record
        replay = client.post(f"/api/runs/{run_id}/replay").json()  # it starts in the background
        follow(client, replay["run_id"])  # until it pauses
        again = client.get(f"/api/runs/{replay['run_id']}").json()["run"]
        print(f"replay: {again['status']}, waiting for legal again (a person is not replayed)")
    server.should_exit = True
    thread.join()


if __name__ == "__main__":
    main()
