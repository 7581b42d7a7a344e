"""Tools: typed Python functions an agent's model may call (``Tool``, ``@tool``).

A tool's JSON schema comes from its signature; the descriptions of its parameters come
from what its author wrote: ``Annotated[T, Field(description=...)]`` or a ``Field(...)``
default first, else the docstring's parameter section (Google ``Args:``, NumPy
``Parameters``, Sphinx ``:param x:``, read by ``docstring_parser``). A docstring that
cannot be parsed leaves the tool described by its whole text, parameters undescribed.

A :class:`Toolset` is a source of tools known only when a run starts (an MCP server's):
the agent opens it as a run starts and closes it when the run ends (:func:`run_tools`).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Protocol, get_args, get_origin, runtime_checkable

from plait._executors import INJECTED, call, call_kind, injected
from plait.errors import DefinitionError, PlaitError
from plait.models import ToolDefinition

if TYPE_CHECKING:
    from plait._run_context import RunContext

__all__ = ["Tool", "Toolset", "describe", "run_tools", "tool"]


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

    ``parameters=`` gives the JSON schema as it is, for a tool whose arguments someone else
    validates (an MCP server's): the signature is not read, and ``fn`` is called with the
    model's arguments as keyword arguments (``def fn(**arguments)``), nothing injected.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        if not callable(fn):
            raise DefinitionError(f"Tool: expected a function, got {fn!r}")
        from pydantic import Field, create_model

        self.fn = fn
        self._given = (name, description, parameters)  # what a pickled copy is built again from
        self.name: str = name or str(getattr(fn, "__name__", type(fn).__name__))
        self.kind = call_kind(fn)
        self.is_async = self.kind == "async"
        #: the JSON schema given as it is (``parameters=``), or None: built from the signature
        self._schema = None if parameters is None else dict(parameters)
        self._built: dict[str, Any] | None = None  # the schema built from the signature, once
        if self._schema is not None:
            if self._schema.get("type", "object") != "object":
                raise DefinitionError(
                    f"Tool {self.name!r}: parameters must be a JSON schema of an object, got {parameters!r}"
                )
            self.description = description or ""
            self.injects: tuple[str, ...] = ()
            self.wants_run_context = False
            return
        summary, documented = describe(fn)
        self.description = description or summary
        signature = _signature(fn)
        fields: dict[str, Any] = {}
        #: what the tool declares of ``run_context`` / ``session_state``: plait passes them,
        #: the model never sees them
        self.injects = tuple(n for n in INJECTED if n in signature.parameters)
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

    def __getstate__(self) -> dict[str, Any]:
        # the arguments model is made at run time (no module holds it): shipped to another
        # process (a Parallel branch on Ray), a tool is built again from its function there
        name, description, parameters = self._given
        return {"fn": self.fn, "name": name, "description": description, "parameters": parameters}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["fn"], name=state["name"], description=state["description"], parameters=state["parameters"]
        )

    @property
    def definition(self) -> ToolDefinition:
        schema = self._schema if self._schema is not None else self._built
        if schema is None:  # built from the signature once (pydantic's schema is not cheap)
            schema = self._built = self._arguments.model_json_schema()
            schema.pop("title", None)
        return ToolDefinition(self.name, self.description, copy.deepcopy(schema))  # the caller's own

    async def call(
        self,
        arguments: dict[str, Any],
        run_blocking: Callable[[Callable[[], Any]], Any],
        run_context: RunContext | None = None,
    ) -> Any:
        if self._schema is not None:  # whoever gave the schema validates the arguments
            return await call(self.fn, self.kind, (), dict(arguments), run_blocking)
        validated = self._arguments.model_validate(arguments)
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        if self.injects:
            kwargs.update(injected(self.injects, run_context))
        return await call(self.fn, self.kind, (), kwargs, run_blocking)


@runtime_checkable
class Toolset(Protocol):
    """Tools known only when a run starts, such as an MCP server's (``plait_mcp.MCPTools``).

    Given in ``Agent(tools=[...])`` beside functions and :class:`Tool` objects. Each run of
    the agent enters ``open()`` as it starts and exits it when the run ends (also on an
    error); what it yields are that run's tools. Whether ``open()`` connects anew or hands
    out a connection the user already opened is the toolset's business.
    ``cache_identity()`` is JSON data that changes when the tools it would give do (a
    cached step's key, see :meth:`Agent.cache_identity`).
    """

    def open(self) -> AbstractAsyncContextManager[Sequence[Tool]]: ...

    def cache_identity(self) -> Any: ...


@asynccontextmanager
async def run_tools(
    where: str, tools: Mapping[str, Tool], toolsets: Sequence[Toolset]
) -> AsyncIterator[dict[str, Tool]]:
    """A run's tools by name: ``tools`` and what each of ``toolsets`` yields, open until the
    block ends. A toolset's tool that takes a name already used is an error naming both."""
    found = dict(tools)
    if not toolsets:
        yield found
        return
    async with AsyncExitStack() as stack:
        for toolset in toolsets:
            given = await stack.enter_async_context(toolset.open())
            for item in given:
                if not isinstance(item, Tool):
                    raise PlaitError(f"{where}: {toolset!r} gave {item!r}, expected plait.Tool objects")
                if item.name in found:
                    raise PlaitError(
                        f"{where}: {toolset!r} gives a tool named {item.name!r}, a name the agent "
                        f"already has (tools: {', '.join(found)}); rename one of them (an MCPTools takes "
                        "tool_name_prefix=) or leave one out"
                    )
                found[item.name] = item
        yield found


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
