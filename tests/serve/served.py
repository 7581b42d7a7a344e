"""Workflows the serve tests put behind a real server (importable by a server subprocess:
``tests.serve.served:approval`` with ``$SERVE_TEST_STORAGE`` naming the storage)."""

from __future__ import annotations

import os
import threading

from pydantic import BaseModel

from plait import Approval, Parallel, Step, StepInput, Steps, Workflow

#: what the ``gated`` workflow's second step waits for (set by the test, in-process)
GATE = threading.Event()


class Topic(BaseModel):
    topic: str
    words: int = 10


def _draft(step_input: StepInput) -> str:
    return f"draft about {step_input.input}"


def _publish(step_input: StepInput) -> str:
    return f"published: {step_input.previous_step_content}"


def _held(step_input: StepInput) -> str:
    assert GATE.wait(60), "the test never opened the gate"
    return "through the gate"


def _topic(step_input: StepInput) -> str:
    topic = step_input.input
    return f"{topic.topic} in {topic.words} words"


def approval_workflow(storage: object = None) -> Workflow:
    """Pauses at an approval inside a Parallel inside a nested Steps."""
    return Workflow(
        name="Announcement",
        description="drafts, waits for legal, publishes",
        steps=[
            Step(name="draft", executor=_draft),
            Steps(
                name="review stage",
                steps=[
                    Parallel(
                        Step(name="check", executor=lambda si: "checked"),
                        Approval(name="legal", prompt="May we publish?", on_reject="stop"),
                        name="reviews",
                    )
                ],
            ),
            Step(name="publish", executor=_publish),
        ],
        storage=storage,  # type: ignore[arg-type]
    )


def gated_workflow(storage: object = None) -> Workflow:
    """Three steps, the middle one waiting for :data:`GATE`."""
    return Workflow(
        name="Gated",
        steps=[
            Step(name="first", executor=lambda si: "one"),
            Step(name="held", executor=_held),
            Step(name="last", executor=lambda si: "three"),
        ],
        storage=storage,  # type: ignore[arg-type]
    )


def typed_workflow(storage: object = None) -> Workflow:
    return Workflow(
        name="Typed", steps=[Step(name="topic", executor=_topic)], input_schema=Topic, storage=storage
    )  # type: ignore[arg-type]


def _subprocess_storage() -> object:
    schema = os.environ.get("SERVE_TEST_PG_SCHEMA")
    if schema:  # a PostgreSQL schema of the test's own
        from plait_postgres import PostgresStorage

        return PostgresStorage("postgresql://postgres@127.0.0.1:5432/test", schema=schema)
    return os.environ.get("SERVE_TEST_STORAGE")


#: for a server subprocess (``plait serve tests.serve.served:approval``)
approval = approval_workflow(_subprocess_storage())
