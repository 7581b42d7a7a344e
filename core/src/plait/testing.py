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
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

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

__all__ = ["EchoModel", "FunctionModel", "plugin_registry"]

_call_ids = itertools.count(1)


def _count_tokens(text: str | None) -> int:
    """A deterministic stand-in for a tokenizer: one token per word."""
    return len(text.split()) if text else 0


class FunctionModel(Model):
    """A model whose replies come from a Python function (see the module docstring)."""

    provider = "function"

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
        prompt = sum(_count_tokens(m.content) for m in request.messages)
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
        last = next((m.content for m in reversed(messages) if m.role == "user"), "")
        return f"[{self.model}] {last}"


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

        from plait._engine import run_branch_payload
        from plait.errors import DefinitionError
        from plait.runners import gather_first_error

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
            result = await run_branch_payload(
                pickle.loads(blob), lambda event: events.append(pickle.dumps(event))
            )
            for raw in events:
                branch.emit(pickle.loads(raw))
            return branch.apply(pickle.loads(pickle.dumps(result)))

        return await gather_first_error([ship(branch) for branch in branches])

    async def run_blocking(self, fn: Any) -> Any:
        return await self._local.run_blocking(fn)
