"""Models for the examples: offline by default, a real provider when you ask for one.

Every example builds its agents with ``demo_model()``. Offline it returns a
deterministic :class:`plait.testing.FunctionModel` that writes a short, plausible
answer from the agent's instructions and input, streamed word by word, so the
examples run anywhere without an API key. Set ``PLAIT_EXAMPLE_MODEL`` to a model
string to run them against a real provider, e.g.::

    PLAIT_EXAMPLE_MODEL=openai:gpt-4o-mini python examples/research_and_write.py
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

from plait.models import Message, Model, ModelRequest
from plait.testing import FunctionModel


def demo_model() -> Model | str:
    """The model every example agent uses."""
    return os.environ.get("PLAIT_EXAMPLE_MODEL") or FunctionModel(offline_reply, model="offline-demo")


def _topic(text: str) -> str:
    """The first line of the text that reads like a sentence, without Markdown marks."""
    lines = [line.strip(" #*-:") for line in text.splitlines()]
    for line in lines:
        if len(line.split()) >= 4:
            return line[:80]
    return next((line for line in lines if line), "the topic")[:80]


def offline_reply(messages: list[Message], request: ModelRequest) -> Iterator[str]:
    system = " ".join(m.content or "" for m in messages if m.role == "system")
    user = next((m.content or "" for m in reversed(messages) if m.role == "user"), "")
    if request.output_schema is not None or "JSON" in system:
        yield json.dumps(_fill(request.output_schema, system))
        return
    topic = _topic(user)
    stop = {"about", "provide", "concise", "factual", "information", "summary", "research", "three", "points"}
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z-]{4,}", user)]
    keywords = ", ".join(dict.fromkeys(w for w in words if w not in stop)) or topic
    task = _topic(system) if system else "answer the request"
    text = (
        f"### {topic}\n\n"
        f"- **Task:** {task.rstrip('.')}.\n"
        f"- **Context:** {keywords[:100]}.\n"
        "- **Evidence:** steady, compounding progress rather than sudden leaps.\n"
        "- **Next step:** focus on what can be measured and improved.\n"
    )
    for word in text.split(" "):
        yield word + " "


def _fill(schema: type | None, system: str) -> dict[str, object]:
    """A value matching the requested JSON schema (the first choice of any enum)."""
    properties: dict[str, dict[str, object]] = {}
    if schema is not None:
        properties = schema.model_json_schema().get("properties", {})  # type: ignore[attr-defined]
    else:
        match = re.search(r"(\{.*\})\s*$", system, re.S)
        if match:
            properties = json.loads(match.group(1)).get("properties", {})
    result: dict[str, object] = {}
    for name, spec in properties.items():
        if "enum" in spec:
            result[name] = spec["enum"][0]  # type: ignore[index]
        elif spec.get("type") == "integer":
            result[name] = 1
        elif spec.get("type") == "number":
            result[name] = 1.0
        elif spec.get("type") == "boolean":
            result[name] = True
        elif spec.get("type") == "array":
            result[name] = []
        else:
            result[name] = f"offline {name}"
    return result
