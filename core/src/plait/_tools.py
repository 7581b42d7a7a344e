"""Tools: typed Python functions an agent's model may call (``Tool``, ``@tool``).

A tool's JSON schema comes from its signature; the descriptions of its parameters come
from what its author wrote: ``Annotated[T, Field(description=...)]`` or a ``Field(...)``
default first, else the docstring's parameter section (Google ``Args:``, NumPy
``Parameters``, Sphinx ``:param x:``, read by ``docstring_parser``). A docstring that
cannot be parsed leaves the tool described by its whole text, parameters undescribed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from plait._executors import INJECTED, call, call_kind, injected
from plait.errors import DefinitionError
from plait.models import ToolDefinition

if TYPE_CHECKING:
    from plait._run_context import RunContext

__all__ = ["Tool", "describe", "tool"]


class Tool:
    """A typed Python function the model may call; its JSON schema comes from the signature.

    >>> def get_weather(city: str, unit: str = "C") -> str:
    ...     '''Current weather in a city.'''

    A ``run_context`` or ``session_state`` parameter is plait's to fill in (the run's
    :class:`~plait.RunContext`, its live session state dict), as in a step's executor:
    it is not part of the JSON schema the model sees.

    Parameters are described as the docstring describes them (Google, NumPy or Sphinx
    style); a description given with ``Annotated[T, Field(description=...)]`` (or a
    ``Field(description=...)`` default) wins over the docstring's. The tool's description is
    the docstring without its parameter section (``description=`` replaces it).
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"Tool: expected a function, got {fn!r}")
        from pydantic import Field, create_model

        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        summary, documented = describe(fn)
        self.description = description or summary
        signature = _signature(fn)
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
            text = documented.get(param.name)
            if text and not _described(annotation, default):
                annotation = Annotated[annotation, Field(description=text)]
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


def describe(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """A function's description and its parameters' descriptions, from its docstring.

    The description is the docstring without its parameter section; a docstring without
    parameters, or one ``docstring_parser`` cannot read, is the description as it is."""
    doc = inspect.getdoc(fn) or ""
    if not doc:
        return "", {}
    import docstring_parser

    try:
        parsed = docstring_parser.parse(doc)
    except Exception:  # a malformed docstring: the tool still works, described by its text
        return doc, {}
    params = {p.arg_name: p.description.strip() for p in parsed.params if p.description}
    if not params:
        return doc, {}
    text = "\n\n".join(part for part in (parsed.short_description, parsed.long_description) if part)
    return text.strip(), params


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with string annotations (``from __future__ import annotations``)
    resolved in its module, so ``Annotated[..., Field(...)]`` and model types are seen; as
    written when a name cannot be resolved there."""
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:
        return inspect.signature(fn)


def _described(annotation: Any, default: Any) -> bool:
    """Whether a parameter's author described it with pydantic's ``Field(description=...)``."""
    from pydantic.fields import FieldInfo

    if isinstance(default, FieldInfo) and default.description:
        return True
    if get_origin(annotation) is Annotated:
        return any(isinstance(m, FieldInfo) and m.description for m in get_args(annotation)[1:])
    return False


def tool(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
) -> Any:
    """Decorator form of :class:`Tool`: ``@tool`` or ``@tool(name="search")``."""
    if fn is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(fn, name=name, description=description)
