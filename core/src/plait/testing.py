"""Deterministic models and plugin helpers for tests and offline examples.

:class:`FunctionModel` turns a plain function into a model::

    def reply(messages):
        return f"Summary of: {messages[-1].content}"

    agent = Agent(name="Writer", model=FunctionModel(reply), instructions="...")

``fn(messages)`` (or ``fn(messages, request)`` to see the tools and settings)
may be sync or async and return a string, a :class:`~plait.models.ToolCall` or a
list of them, or yield string chunks (sync or async generator) to stream.

:func:`plugin_registry` gives a test a registry with only the plugins it names,
so tests never depend on what happens to be installed.

:class:`OfflineModel` is the ``offline:`` provider (``model="offline:demo"``): no
API key, no network. It writes a short, readable, deterministic reply suited to
the agent's instructions (a researcher lists findings, a writer writes, an
editor edits, ...), streamed a word at a time with a small delay
(``PLAIT_OFFLINE_DELAY`` seconds per word, default 0.02; ``0`` in tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import re
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from plait._cassette import Cassette
from plait._parts import ALL_KINDS
from plait.errors import DefinitionError
from plait.models import (
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    ModelStreamEvent,
    TextDelta,
    ToolCall,
    ToolCallPart,
    Usage,
)
from plait.plugins import Registry, build_registry, set_registry

__all__ = ["EchoModel", "FunctionModel", "OfflineModel", "cassette", "plugin_registry"]

_call_ids = itertools.count(1)


def _count_tokens(text: str | None) -> int:
    """A deterministic stand-in for a tokenizer: one token per word."""
    return len(text.split()) if text else 0


class FunctionModel(Model):
    """A model whose replies come from a Python function (see the module docstring)."""

    provider = "function"
    accepts_parts = ALL_KINDS  # a function sees the parts as they are

    def __init__(self, fn: Callable[..., Any], *, model: str | None = None, **options: Any) -> None:
        if not callable(fn):
            raise DefinitionError(f"FunctionModel: expected a function, got {fn!r}")
        super().__init__(model or str(getattr(fn, "__name__", "function")), **options)
        self.fn = fn
        try:
            positional = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            self._wants_request = len(positional) >= 2
        except (TypeError, ValueError):
            self._wants_request = False

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        args = (request.messages, request) if self._wants_request else (request.messages,)
        result = self.fn(*args)
        if inspect.isawaitable(result):
            result = await result
        text: list[str] = []
        calls: list[ToolCall] = []
        if isinstance(result, (str, ToolCall, ModelResponse)) or result is None:
            items: Iterable[Any] | AsyncIterator[Any] = [result]
        elif isinstance(result, list) and all(isinstance(r, ToolCall) for r in result):
            items = result
        else:
            items = result
        if hasattr(items, "__aiter__"):
            async for item in items:  # type: ignore[union-attr]
                for event in self._take(item, text, calls):
                    yield event
        else:
            for item in items:  # type: ignore[union-attr]
                for event in self._take(item, text, calls):
                    yield event
        if isinstance(result, ModelResponse):
            yield result
            return
        content = "".join(text) if text else None
        prompt = sum(_count_tokens(m.text) for m in request.messages)
        yield ModelResponse(
            message=Message("assistant", content, tool_calls=calls),
            usage=Usage(input_tokens=prompt, output_tokens=_count_tokens(content), requests=1),
            finish_reason="tool_calls" if calls else "stop",
            response_id=f"fn-{next(_call_ids)}",
            model=self.model,
            provider=self.provider,
        )

    @staticmethod
    def _take(item: Any, text: list[str], calls: list[ToolCall]) -> Iterator[ModelStreamEvent]:
        if item is None or isinstance(item, ModelResponse):
            return
        if isinstance(item, ToolCall):
            calls.append(item)
            yield ToolCallPart(item)
        elif isinstance(item, str):
            text.append(item)
            yield TextDelta(item)
        else:
            raise DefinitionError(
                f"FunctionModel: the function returned or yielded {item!r}; expected text or a ToolCall"
            )


class EchoModel(FunctionModel):
    """Replies with the last user message, prefixed: the ``test:`` provider (``"test:echo"``)."""

    provider = "test"

    def __init__(self, model: str = "echo", **options: Any) -> None:
        super().__init__(self._reply, model=model, **options)

    def _reply(self, messages: list[Message]) -> str:
        last = next((m for m in reversed(messages) if m.role == "user"), None)
        return f"[{self.model}] {_described(last)}"


def _described(message: Message | None) -> str:
    """A message's text, with each media part named (``[image (image/png, 2,048 bytes)]``)."""
    if message is None:
        return ""
    from plait._parts import parts_text

    return message.content if isinstance(message.content, str) else parts_text(message.content or [])


def _topic(text: str) -> str:
    """What the text is about: its first sentence-like line, without Markdown marks or a request verb."""
    heading = next((line for line in text.splitlines() if line.startswith("#")), None)  # a previous reply's
    lines = [line.strip(" #*-:_") for line in text.splitlines()]
    line = heading.strip(" #") if heading else next((line for line in lines if len(line.split()) >= 4), None)
    line = line or next((line for line in lines if line), "") or "the topic"
    line = re.sub(
        r"^(please\s+)?((tell|teach) me about|write (about|on)|explain|research|describe)\s+",
        "",
        line,
        flags=re.I,
    )
    line = line.rstrip(" .?!")[:80] or "the topic"
    return line[0].upper() + line[1:]


# role -> (words in the agent's instructions that select it, the reply's paragraphs).
# Replies are templates over the topic; which variant is used depends on a checksum
# of the input, so the same input always gives the same text.
_ROLES: list[tuple[str, tuple[str, ...], list[str]]] = [
    (
        "checker",
        ("check", "claim", "verify"),
        [
            "Claims that need a source:\n\n"
            "1. Every date and number in the draft about {t}.\n"
            '2. Any "first" or "only": these are the claims readers challenge.\n'
            "3. Quotes: each needs a named speaker and a link.",
        ],
    ),
    (
        "editor",
        ("edit", "proofread", "polish the", "clarity"),
        [
            "I tightened the draft on {t}: the main point now comes first, long sentences are split, "
            "and each paragraph carries one idea. The structure and the facts are unchanged.",
        ],
    ),
    (
        "analyst",
        ("analy", "assess", "opinion", "synthes", "combine", "evaluate"),
        [
            "**Assessment.** The evidence on {t} is consistent: progress has been steady rather than sudden, "
            "and the biggest gains came when better tools met clearer goals.\n\n"
            "**Risk.** Much of what is written about {t} repeats a few sources; the weakest claims are the newest.\n\n"
            "**Verdict.** Worth pursuing, with a small first step that can be measured.",
            "**Assessment.** Taken together, the findings on {t} point one way: the fundamentals are sound, "
            "and the open questions are about pace, not direction.\n\n"
            "**Risk.** Optimistic estimates dominate the sources; plan for the slower case.\n\n"
            "**Verdict.** Proceed, and review the numbers after the first milestone.",
        ],
    ),
    (
        "announcer",
        ("announce",),
        [
            "We are glad to share the news: {t}. It is the result of many small, careful steps, "
            "and of the people who tried early versions and told us what to fix.\n\n"
            "Everything you need to get started is in the documentation. Thank you for building with us.",
        ],
    ),
    (
        "writer",
        ("write", "article", "announcement", "report", "briefing", "story", "draft"),
        [
            "{T} is less a story of sudden breakthroughs than of patient work. Small groups set clear goals, "
            "built what they could test, and kept what worked.\n\n"
            "The research shows the same pattern again and again: enthusiasm, a hard limit, a quieter period of "
            "better tools, then a new leap. Today's results stand on every one of those cycles.\n\n"
            "What comes next will be decided the same way: by what can be measured, shared and improved.",
            "Few subjects reward a closer look like {t}. Behind the headlines is a long line of careful "
            "experiments, each one answering a single, well-posed question.\n\n"
            "The research gathered here traces that line from its first ideas to the present, and shows why "
            "the slow, cumulative steps mattered more than any single moment.\n\n"
            "The lesson for readers is practical: progress follows good questions.",
        ],
    ),
    (
        "researcher",
        ("research", "find", "gather", "collect", "fact", "investigat"),
        [
            "Key findings:\n\n"
            "1. The early work on {t} came from a few small groups with clear, testable goals.\n"
            "2. Progress came in waves: fast advances, then slower periods of consolidation.\n"
            "3. The most reliable sources are first-hand accounts and recent surveys.",
            "Key findings:\n\n"
            "1. Interest in {t} grew from practical problems, not theory alone.\n"
            "2. Better tools and shared data drove most of the measurable progress.\n"
            "3. Open questions remain about cost and scale.",
        ],
    ),
]
_ANSWER = [
    "Here is a short answer on {t}: start from the basics, check the claims against a primary source, "
    "and keep the first step small enough to measure.",
]


class OfflineModel(FunctionModel):
    """The ``offline:`` provider: readable, deterministic replies without a network (see the module docstring)."""

    provider = "offline"

    def __init__(self, model: str = "demo", *, delay: float | None = None, **options: Any) -> None:
        super().__init__(self._reply, model=model, **options)
        self.delay = float(os.environ.get("PLAIT_OFFLINE_DELAY", "0.02")) if delay is None else delay

    async def _reply(self, messages: list[Message], request: ModelRequest) -> AsyncIterator[str]:
        system = "\n".join(m.text for m in messages if m.role == "system")
        last = next((m for m in reversed(messages) if m.role == "user"), None)
        user = last.text if last is not None else ""
        media = [] if last is None else [p for p in last.parts if p.kind != "text"]
        if request.output_schema is not None or "JSON" in system:
            yield json.dumps(_fill_schema(request.output_schema, system))
            return
        topic = _topic(user)
        lowered = system.lower()
        variants = next((texts for _, words, texts in _ROLES if any(w in lowered for w in words)), _ANSWER)
        body = variants[zlib.crc32(user.encode()) % len(variants)]
        text = f"### {topic}\n\n" + body.format(t=topic[0].lower() + topic[1:], T=topic) + "\n"
        if media:  # what it was given besides text: named, so a reader sees the parts arrived
            text += "\nAttached: " + "; ".join(p.describe() for p in media) + ".\n"  # type: ignore[union-attr]
        for token in re.findall(r"\S+\s*|\s+", text):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield token


def _fill_schema(schema: type | None, system: str) -> dict[str, object]:
    """A value matching the requested JSON schema (the first choice of any enum or Literal)."""
    properties: dict[str, dict[str, object]] = {}
    if schema is not None:
        properties = schema.model_json_schema().get("properties", {})  # type: ignore[attr-defined]
    else:
        match = re.search(r"(\{.*\})\s*$", system, re.S)
        if match:
            properties = json.loads(match.group(1)).get("properties", {})
    defaults: dict[object, object] = {"integer": 1, "number": 1.0, "boolean": True, "array": []}
    return {name: _fill_value(name, spec, defaults) for name, spec in properties.items()}


def _fill_value(name: str, spec: dict[str, Any], defaults: dict[object, object]) -> object:
    """A value of one property: its ``const`` (a one-value Literal), else its first enum choice."""
    if "const" in spec:
        return spec["const"]
    if "enum" in spec:
        return spec["enum"][0]
    return defaults.get(spec.get("type"), f"offline {name}")


@contextlib.contextmanager
def plugin_registry(*plugins: object, entry_points: bool = False, strict: bool = True) -> Iterator[Registry]:
    """Use a registry with the built-ins and only ``plugins`` for the duration of a test.

    >>> with plugin_registry(my_plugin) as registry:
    ...     assert "mystep" in registry.entries("step_type")
    """
    registry = build_registry(plugins, entry_points=entry_points, strict=strict)
    previous = set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(previous)


def cassette(path: str | os.PathLike[str], mode: str = "once") -> Cassette:
    """Record the model and tool calls of every workflow and agent run under this block to a
    JSON-lines file at ``path``, or answer them from it: VCR at the model boundary.

    ``mode="once"`` (the default) records when the file does not exist and replays it when
    it does; ``"replay"`` requires the file; ``"record"`` makes every call live and writes a
    new file. Replaying makes no call at all (no network, no API key): a request the cassette
    does not have raises :class:`~plait.errors.ReplayDivergenceError` with a diff against the
    recorded one. Works as ``with cassette(...):`` and ``async with cassette(...):``::

        with cassette("tests/cassettes/report.jsonl"):
            output = workflow.run("quarterly report")

    Calls match on their step id and request (model, messages, settings, tools, output
    schema; a tool's name and arguments), in the order they were recorded. A cassette holds
    the prompts and answers as they were sent, secrets (the model's API keys) scrubbed.
    """
    return Cassette(path, mode)


class PickleRoundTripRunner:
    """A runner that ships every branch through ``pickle`` and back, in this process.

    It executes branches the way a distributed runner does (payload out, events
    and result back), so tests catch steps that cannot be shipped, without a
    cluster. For tests only: plait never pickles anything it persists.
    """

    name = "pickle-roundtrip"

    def __init__(self) -> None:
        from plait.runners import InProcessRunner

        self._local = InProcessRunner(max_threads=32)
        self.shipped = 0

    async def run_branches(self, branches: Any, *, max_concurrency: int | None = None) -> list[Any]:
        import pickle

        from plait.errors import DefinitionError
        from plait.runners import gather_first_error, run_branch_payload

        async def ship(branch: Any) -> Any:
            payload = branch.payload()
            try:
                blob = pickle.dumps(payload)
            except Exception as exc:
                raise DefinitionError(
                    f"step {branch.node.name!r} cannot be shipped to another process: {exc}"
                ) from exc
            self.shipped += 1
            events: list[bytes] = []
            try:
                result = await run_branch_payload(
                    pickle.loads(blob), lambda event: events.append(pickle.dumps(event))
                )
            except Exception as exc:
                branch.failed(getattr(exc, "plait_recording", None))  # stored by the executor
                raise
            for raw in events:
                branch.emit(pickle.loads(raw))
            return await branch.aapply(pickle.loads(pickle.dumps(result)))

        return await gather_first_error([ship(branch) for branch in branches])

    async def run_blocking(self, fn: Any) -> Any:
        return await self._local.run_blocking(fn)
