"""A workflow whose steps produce and keep typed content, run in subprocesses:
``python typed_steps.py URL run RUN_ID`` crashes (SIGKILL) in its last step;
``python typed_steps.py URL continue RUN_ID`` resumes it and prints a JSON summary.

The last step checks that every value came back as the type the first steps made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
import signal
import sys
import uuid
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from plait import Parallel, ParallelContent, Step, StepInput, Workflow
from plait._codec import allow_content_type


class Point(BaseModel):
    x: int
    y: int
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Box:
    point: Point
    size: Decimal
    extra: Any = None


class Colour(enum.Enum):
    RED = "red"


class Size(enum.StrEnum):
    LARGE = "large"


allow_content_type(Colour, Size)  # declared by no step: the explicit allow-list

STAMP = dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC)
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
HUGE = "x" * 5_000_000


def samples() -> dict[str, Any]:
    """Every kind of content, each to be compared with what comes back."""
    return {
        "model": Point(x=1, y=2, tags=("a", "b")),
        "dataclass": Box(Point(x=3, y=4), Decimal("1.10"), extra=(1, {2: "two"})),
        "tuple": (1, "two", (3.5, None)),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "datetime": STAMP,
        "date": STAMP.date(),
        "timedelta": dt.timedelta(days=1, seconds=5),
        "int_keys": {1: "one", 2: {3: (4, 5)}},
        "bytes": b"\x00\xffbinary",
        "decimal": Decimal("3.14159265358979323846"),
        "uuid": ID,
        "enum": Colour.RED,
        "str_enum": Size.LARGE,
        "nested": [{"when": STAMP, "ids": {ID}}, (Point(x=5, y=6),)],
        "tag_lookalike": {"$plait": "tuple", "v": [1]},
        "huge": HUGE,
        "nan": float("inf"),
    }


def make_model(step_input: StepInput, run_context) -> Point:  # type: ignore[no-untyped-def]
    run_context.session_state["seen"] = samples()
    return Point(x=1, y=2, tags=("a", "b"))


def make_box(step_input: StepInput) -> Box:
    return Box(Point(x=3, y=4), Decimal("1.10"), extra=(1, {2: "two"}))


def make_mixed(step_input: StepInput) -> dict[int, Any]:
    return {1: (STAMP, ID), 2: {b"k"}}


def make_all(step_input: StepInput) -> dict[str, Any]:
    return samples()


def check(step_input: StepInput, run_context) -> str:  # type: ignore[no-untyped-def]
    if os.environ.get("PLAIT_CRASH") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    outputs = step_input.previous_step_outputs
    problems = []
    expected = {
        "model": Point(x=1, y=2, tags=("a", "b")),
        "box": Box(Point(x=3, y=4), Decimal("1.10"), extra=(1, {2: "two"})),
        # a Parallel's content is a ParallelContent (a dict), and comes back as one
        "fan": ParallelContent({"mixed": {1: (STAMP, ID), 2: {b"k"}}, "all": samples()}),
    }
    for name, value in expected.items():
        got = outputs[name].content
        if got != value or type(got) is not type(value):
            problems.append(f"{name}: {got!r:.200}")
    for key, value in samples().items():
        got = run_context.session_state["seen"][key]
        if got != value or type(got) is not type(value):
            problems.append(f"state {key}: {got!r:.200}")
    point = outputs["model"].content
    return json.dumps({"problems": problems, "sum": point.x + point.y})


def build(storage: str) -> Workflow:
    return Workflow(
        name="typed",
        steps=[
            Step(name="model", executor=make_model),
            Step(name="box", executor=make_box),
            Parallel(
                Step(name="mixed", executor=make_mixed), Step(name="all", executor=make_all), name="fan"
            ),
            Step(name="check", executor=check),
        ],
        storage=storage,
    )


if __name__ == "__main__":
    url, mode, run_id = sys.argv[1:4]
    workflow = build(url)
    if mode == "run":
        os.environ["PLAIT_CRASH"] = "1"
        workflow.run("go", run_id=run_id)
    else:
        output = workflow.continue_run(run_id)
        print(json.dumps({"status": output.status.value, "content": output.content}))
