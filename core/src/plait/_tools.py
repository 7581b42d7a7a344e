"""Tools: typed Python functions an agent's model may call (``Tool``, ``@tool``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait._executors import INJECTED, call, call_kind, injected
from plait.errors import DefinitionError
from plait.models import ToolDefinition

if TYPE_CHECKING:
    from plait._context import RunContext

__all__ = ["Tool", "tool"]


class Tool:
    """A typed Python function the model may call; its JSON schema comes from the signature.

    >>> def get_weather(city: str, unit: str = "C") -> str:
    ...     '''Current weather in a city.'''

    A ``run_context`` or ``session_state`` parameter is plait's to fill in (the run's
    :class:`~plait.RunContext`, its live session state dict), as in a step's executor:
    it is not part of the JSON schema the model sees.
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"Tool: expected a function, got {fn!r}")
        from pydantic import create_model

        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.description = description or inspect.getdoc(fn) or ""
        signature = inspect.signature(fn)
        fields: dict[str, Any] = {}
        #: what the tool declares of ``run_context`` / ``session_state``: plait passes them,
        #: the model never sees them
        self.injects: tuple[str, ...] = tuple(n for n in INJECTED if n in signature.parameters)
        self.wants_run_context = "run_context" in self.injects
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or param.name in INJECTED:
                continue
            annotation = param.annotation if param.annotation is not param.empty else Any
            default = param.default if param.default is not param.empty else ...
            fields[param.name] = (annotation, default)
        self._arguments = create_model(f"{self.name}_arguments", **fields)
        self.kind = call_kind(fn)
        self.is_async = self.kind == "async"

    @property
    def definition(self) -> ToolDefinition:
        schema = self._arguments.model_json_schema()
        schema.pop("title", None)
        return ToolDefinition(self.name, self.description, schema)

    async def call(
        self,
        arguments: dict[str, Any],
        run_blocking: Callable[[Callable[[], Any]], Any],
        run_context: RunContext | None = None,
    ) -> Any:
        validated = self._arguments.model_validate(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.injects:
            kwargs.update(injected(self.injects, run_context))
        return await call(self.fn, self.kind, (), kwargs, run_blocking)


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Decorator form of :class:`Tool`: ``@tool`` or ``@tool(name="search")``."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)
