"""Workflows the serve tests put behind a real server (importable by a server subprocess:
``tests.serve.served:approval`` with ``$SERVE_TEST_STORAGE`` naming the storage)."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from plait import Approval, Condition, Loop, Parallel, Router, Step, StepInput, Steps, Workflow

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


class Details(BaseModel):
    """What the ``review`` workflow asks a person for."""

    title: str = Field(description="the headline")
    words: int = 100
    urgent: bool = False
    tone: Literal["plain", "warm"] = "plain"
    tags: list[str] = []
    due: datetime | None = None


def _publish_details(step_input: StepInput) -> str:
    details = step_input.get_step_content("details")
    assert isinstance(details, Details), details
    channel = step_input.get_step_content("channel")
    return f"{details.title}: {details.words} words, {details.tone}, urgent={details.urgent}, tags={details.tags}, to {channel}"


def review_workflow(storage: object = None) -> Workflow:
    """A loop, a condition with else, then a form (an input Approval with a schema) and a
    choice, then a step that uses both answers."""
    return Workflow(
        name="Review",
        steps=[
            Step(name="draft", executor=_draft),
            Loop(
                name="polish",
                steps=[Step(name="refine", executor=lambda si: f"refined {si.previous_step_content}")],
                end_condition=lambda outputs: True,
                max_iterations=2,
            ),
            Condition(
                name="long enough",
                evaluator=True,
                steps=[Step(name="trim", executor=lambda si: "trimmed")],
                else_steps=[Step(name="pad", executor=lambda si: "padded")],
            ),
            Approval(name="details", kind="input", schema=Details, prompt="Fill in the details"),
            Approval(name="channel", kind="choice", choices=["blog", "newsletter"], prompt="Where to?"),
            Step(name="publish", executor=_publish_details),
        ],
        storage=storage,  # type: ignore[arg-type]
    )


def _ok(step_input: StepInput) -> str:
    return "ok"


def shapes_workflow(storage: object = None) -> Workflow:
    """Every container the graph draws: a Parallel holding a step, a nested workflow and a
    Steps group, a Router, an Approval with routes; it pauses at the approval."""
    inner = Workflow(
        name="Inner research", steps=[Step(name="search", executor=_ok), Step(name="summarise", executor=_ok)]
    )
    tech, business = Step(name="tech writer", executor=_ok), Step(name="business writer", executor=_ok)
    return Workflow(
        name="Shapes",
        steps=[
            Parallel(
                Step(name="a", executor=_ok),
                inner,
                Steps(name="group", steps=[Step(name="g1", executor=_ok), Step(name="g2", executor=_ok)]),
                name="gather",
            ),
            Router(name="pick", selector=lambda si: tech, choices=[tech, business]),
            Approval(
                name="length",
                kind="choice",
                choices=["short", "long"],
                routes={
                    "short": [Step(name="cut", executor=_ok)],
                    "long": [Step(name="expand", executor=_ok), Step(name="polish", executor=_ok)],
                },
            ),
            Step(name="a step with a rather long name that goes on", executor=_ok),
        ],
        storage=storage,  # type: ignore[arg-type]
    )


def _subprocess_storage() -> object:
    schema = os.environ.get("SERVE_TEST_PG_SCHEMA")
    if schema:  # a PostgreSQL schema of the test's own
        from plait_postgres import PostgresStorage

        return PostgresStorage("postgresql://postgres@127.0.0.1:5432/test", schema=schema)
    return os.environ.get("SERVE_TEST_STORAGE")


#: for a server subprocess (``plait serve tests.serve.served:approval``)
approval = approval_workflow(_subprocess_storage())
