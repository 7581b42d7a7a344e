"""User callables: classified once at construction, called through one dispatcher.

A step executor, evaluator, selector, end condition or agent tool may be a sync
or async function, a sync or async generator function, or an object whose
``__call__`` is any of those. :class:`Callee` records which, and which of the
arguments plait fills in itself it declares (``run_context``, ``session_state``:
:data:`INJECTED`), so nothing is inspected on the hot path; :func:`call`
is the one place that calls such code (awaiting it, offloading sync code to a
worker thread, or consuming what a generator yields).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import types
import typing
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from plait._codec import allow_content_type, declared_types
from plait._io import StepOutput
from plait.errors import DefinitionError

if TYPE_CHECKING:
    import hashlib

__all__ = [
    "INJECTED",
    "Blocking",
    "CallKind",
    "Callee",
    "call",
    "call_kind",
    "declares",
    "injected",
    "to_output",
]

CallKind = Literal["sync", "async", "sync_gen", "async_gen"]
#: how sync code is sent off the event loop: a runner's ``run_blocking``
Blocking = Callable[[Callable[[], Any]], Awaitable[Any]]


#: the parameters plait fills in itself when user code declares them: the run's
#: :class:`~plait.RunContext` and its live session state (``run_context.session_state``)
INJECTED = ("run_context", "session_state")


def injected(names: tuple[str, ...], run_context: Any) -> dict[str, Any]:
    """The keyword arguments for the injected parameters ``names`` (see :data:`INJECTED`):
    ``run_context`` is the run context, ``session_state`` its live session state dict, so
    what the code changes in it is the run's state."""
    return {name: run_context if name == "run_context" else run_context.session_state for name in names}


def call_kind(fn: Callable[..., Any]) -> CallKind:
    """Whether ``fn`` (or a callable object's ``__call__``) is sync, async, or a generator function."""
    target: Any = fn
    plain = inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn)
    if not plain and not hasattr(fn, "func"):  # a callable object: its __call__ decides
        target = type(fn).__call__
    if inspect.isasyncgenfunction(target):
        return "async_gen"
    if inspect.isgeneratorfunction(target):
        return "sync_gen"
    if inspect.iscoroutinefunction(target):
        return "async"
    return "sync"


async def call(
    fn: Callable[..., Any],
    kind: CallKind,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    blocking: Blocking | None,
    emit: Callable[[Any], None] | None = None,
) -> Any:
    """Call user code of ``kind`` and return what it returns.

    Async code is awaited; sync code runs through ``blocking`` when given (a worker
    thread, so the loop stays free), else right here; a coroutine that sync code
    returns is awaited. With ``emit`` (a step executor), the result is a
    :class:`StepOutput`: what a generator yields is consumed (``next`` through
    ``blocking`` too), each item passed to ``emit``; its last StepOutput, or the
    text it yielded, is the output.
    """
    if kind == "async":
        result = await fn(*args, **kwargs)
    elif kind == "sync" and blocking is not None:
        result = await blocking(partial(fn, *args, **kwargs))
    else:
        result = fn(*args, **kwargs)
    if emit is None:
        if inspect.iscoroutine(result):
            result = await result
        return result
    if type(result) is StepOutput:
        return result
    return await to_output(result, emit, blocking)


async def to_output(result: Any, emit: Callable[[Any], None], blocking: Blocking | None = None) -> StepOutput:
    """What an executor returned as a StepOutput: a coroutine awaited, a generator consumed
    (each item passed to ``emit``), any other value its content."""
    if inspect.iscoroutine(result):
        result = await result
    if hasattr(result, "__anext__"):
        return await _consume_async(result, emit)
    if hasattr(result, "__next__") and hasattr(result, "send"):
        return await _consume_sync(result, emit, blocking)
    return result if isinstance(result, StepOutput) else StepOutput(content=result)


async def _consume_async(agen: Any, emit: Callable[[Any], None]) -> StepOutput:
    final: StepOutput | None = None
    text: list[str] = []
    try:
        async for item in agen:
            final = _take(item, final, text, emit)
    finally:
        await agen.aclose()
    return _yielded(final, text)


async def _consume_sync(gen: Any, emit: Callable[[Any], None], blocking: Blocking | None) -> StepOutput:
    final: StepOutput | None = None
    text: list[str] = []
    done = object()
    try:
        while True:
            if blocking is not None:
                item = await blocking(partial(next, gen, done))
            else:
                item = next(gen, done)
            if item is done:
                break
            final = _take(item, final, text, emit)
    finally:
        gen.close()
    return _yielded(final, text)


def _take(
    item: Any, final: StepOutput | None, text: list[str], emit: Callable[[Any], None]
) -> StepOutput | None:
    if isinstance(item, StepOutput):
        return item
    if isinstance(item, str):
        text.append(item)
    emit(item)
    return final


def _yielded(final: StepOutput | None, text: list[str]) -> StepOutput:
    """A generator's output: the last StepOutput it yielded, else the text it yielded."""
    if final is not None:
        return final
    return StepOutput(content="".join(text) if text else None)


class Callee:
    """A user callable and how to call it."""

    __slots__ = (
        "_identity",
        "declared_types",
        "executor_type",
        "fn",
        "injects",
        "kind",
        "name",
        "plain",
        "wants_run_context",
    )

    def __init__(self, fn: Callable[..., Any], *, what: str, takes: str | None = None) -> None:
        if not callable(fn):
            raise DefinitionError(f"{what}: expected a function or a callable object, got {fn!r}")
        self.fn = fn
        is_class_instance = not (inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn))
        self.kind: CallKind = call_kind(fn)
        self.name = getattr(fn, "__name__", None) or type(fn).__name__
        self.executor_type = "class" if is_class_instance and not hasattr(fn, "func") else "function"
        self.wants_run_context = _accepts(fn, "run_context")
        #: what plait passes besides the arguments: ``run_context`` (also to ``**kwargs``) and
        #: ``session_state`` (only when declared by name, as Agno does), in that order
        self.injects: tuple[str, ...] = tuple(
            name
            for name in INJECTED
            if (self.wants_run_context if name == "run_context" else declares(fn, name))
        )
        if takes is not None:
            check_signature(fn, what, takes, self.injects)
        #: a sync function called with only its arguments: the hot path, called inline
        self.plain = self.kind == "sync" and not self.injects
        self.declared_types = _declared_types(fn, self.executor_type)
        # declared classes may be rebuilt from stored content (resume, cache) by any run of this process
        allow_content_type(*self.declared_types)
        self._identity: Any = None

    def cache_identity(self, where: str, *, versioned: bool) -> Any:
        """What decides the callable's output besides its input: its code (a digest of its
        bytecode and constants, and of every method of a callable object's class) and its
        configuration (defaults, the closure's values except mutable containers, which are
        state the function keeps, a callable object's attributes or its own
        ``cache_identity()``), taken once, when first asked (at construction).

        A value whose configuration cannot be read (a client, a lock, ...) is a
        DefinitionError, unless the policy has a ``version`` (then only its type counts).
        """
        if self._identity is None:
            self._identity = _Identity(where, versioned).of(self.fn, "the executor")
        return self._identity

    def __repr__(self) -> str:
        return f"Callee({self.name!r}, {self.kind})"


def check_signature(fn: Callable[..., Any], what: str, takes: str, injects: tuple[str, ...] = ()) -> None:
    """Refuse, at construction, a callable that cannot be called with one positional
    argument (``takes`` says which: "the StepInput") and the injected keywords it
    declares: a DefinitionError naming ``what`` and the signature. Defaults, ``*args``,
    bound methods, callable objects, classes and ``functools.partial`` are understood by
    :func:`inspect.signature`; a callable without a readable signature passes."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(None, **dict.fromkeys(injects))
    except TypeError as exc:
        name = getattr(fn, "__name__", None) or type(fn).__name__
        if isinstance(fn, functools.partial):
            name = f"partial({getattr(fn.func, '__name__', fn.func)!s}, ...)"
        elif name == "<lambda>":
            name = "lambda"
        raise DefinitionError(
            f"{what}: {name}{signature} cannot be called with one argument, {takes} ({exc}); "
            "expected a callable that takes it as its first positional parameter"
        ) from None


def _accepts(fn: Callable[..., Any], parameter: str) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return parameter in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values()
    )


def declares(fn: Callable[..., Any], parameter: str) -> bool:
    """Whether ``fn`` names ``parameter`` in its signature (``**kwargs`` does not count)."""
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _declared_types(fn: Callable[..., Any], executor_type: str) -> list[type]:
    """Model, dataclass and enum classes in the callable's annotations."""
    target: Any = fn if executor_type == "function" else type(fn).__call__
    target = getattr(target, "func", target)  # functools.partial
    try:
        hints = list(typing.get_type_hints(target).values())
    except Exception:  # unresolvable forward references: take what already is a class
        hints = list(getattr(target, "__annotations__", {}).values())
    return declared_types(hints)


def code_identity(fn: Callable[..., Any], where: str) -> Any:
    """A callable's code and configuration as JSON data; what cannot be read counts by its type."""
    return _Identity(where, versioned=True).of(fn, "the callable")


class _Identity:
    """Builds a callable's cache identity: JSON data that changes when its code or configuration does."""

    def __init__(self, where: str, versioned: bool) -> None:
        self.where = where
        self.versioned = versioned
        self.seen: set[int] = set()

    def of(self, value: Any, path: str) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, bytes):
            return ["bytes", _sha256(value).hexdigest()]
        if isinstance(value, enum.Enum):
            return ["enum", _qualified(type(value)), self.of(value.value, path)]
        if isinstance(value, type):
            return ["class", _qualified(value), _class_digest(value)]
        if isinstance(value, types.ModuleType):
            return ["module", value.__name__]
        if id(value) in self.seen:  # a function or object that refers to itself
            return ["again", _qualified(type(value))]
        self.seen.add(id(value))
        if isinstance(value, (list, tuple)):
            return [type(value).__name__, [self.of(item, f"{path}[{i}]") for i, item in enumerate(value)]]
        if isinstance(value, (set, frozenset)):
            return [type(value).__name__, sorted((self.of(item, path) for item in value), key=repr)]
        if isinstance(value, dict):
            return ["dict", [[self.of(k, path), self.of(v, f"{path}[{k!r}]")] for k, v in value.items()]]
        if isinstance(value, types.FunctionType):
            return self._function(value, path)
        if isinstance(value, types.MethodType):
            return ["method", self.of(value.__func__, path), self.of(value.__self__, f"{path}.__self__")]
        if isinstance(value, functools.partial):
            return [
                "partial",
                self.of(value.func, path),
                self.of(value.args, path),
                self.of(value.keywords, path),
            ]
        if isinstance(value, (types.BuiltinFunctionType, types.BuiltinMethodType)):
            return ["builtin", getattr(value, "__module__", None), value.__qualname__]
        own = getattr(value, "cache_identity", None)
        if callable(own):  # the object says what its identity is (plait's Agent does)
            return ["object", _qualified(type(value)), _class_digest(type(value)), self.of(own(), path)]
        attributes = _attributes(value)
        if attributes is None:
            if self.versioned:
                return ["opaque", _qualified(type(value))]
            raise DefinitionError(
                f"{self.where}: cache= cannot tell when the step's output changes: {path} is a "
                f"{_qualified(type(value))} whose configuration plait cannot read. Give "
                "cache=CachePolicy(version=...) (and change the version when the code or its "
                "configuration changes), or give the object a cache_identity() method that returns "
                "what decides its output"
            )
        return [
            "object",
            _qualified(type(value)),
            _class_digest(type(value)),
            {name: self.of(item, f"{path}.{name}") for name, item in attributes.items()},
        ]

    def _function(self, fn: types.FunctionType, path: str) -> Any:
        closure = fn.__closure__ or ()
        names = fn.__code__.co_freevars
        cells = {}
        for name, cell in zip(names, closure, strict=False):
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell: a variable not yet assigned
                cells[name] = ["empty"]
                continue
            if isinstance(
                content, _MUTABLE
            ):  # state the function keeps (a log, a counter), not configuration
                cells[name] = ["mutable", type(content).__name__]
            else:
                cells[name] = self.of(content, f"{name!r} (a closure variable of {fn.__qualname__})")
        return [
            "function",
            fn.__module__,
            fn.__qualname__,
            _code_digest(fn.__code__),
            self.of(fn.__defaults__, f"the defaults of {fn.__qualname__}"),
            self.of(fn.__kwdefaults__, f"the defaults of {fn.__qualname__}"),
            cells,
        ]


_MUTABLE = (list, dict, set, bytearray)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _attributes(value: Any) -> dict[str, Any] | None:
    """A plain object's configuration (its attributes), or None where it is not plain data."""
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        return {name: getattr(value, name) for name in type(value).model_fields}
    attributes: dict[str, Any] = {}
    slotted = False
    for cls in type(value).__mro__:
        for name in getattr(cls, "__slots__", ()):
            slotted = True
            if hasattr(value, name) and name not in ("__dict__", "__weakref__"):
                attributes[name] = getattr(value, name)
    if hasattr(value, "__dict__"):
        attributes.update(vars(value))
    elif not slotted:  # a type made in C (a lock, a socket, a client's handle): its state is not visible
        return None
    return attributes


def _class_digest(cls: type) -> str:
    """A digest of every function defined in a class and its bases (not object's)."""
    digest = _sha256()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ == "builtins":
            continue
        for name, member in sorted(vars(klass).items()):
            function = getattr(member, "__func__", member)  # staticmethod, classmethod
            if isinstance(function, types.FunctionType):
                digest.update(f"{klass.__qualname__}.{name}:{_code_digest(function.__code__)}".encode())
    return digest.hexdigest()


def _code_digest(code: types.CodeType) -> str:
    """A digest of what a code object does: bytecode, names and constants (not its file or line)."""
    parts = [
        code.co_code,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_argcount,
        code.co_kwonlyargcount,
        code.co_flags,
        [_constant(c) for c in code.co_consts],
    ]
    return _sha256(repr(parts).encode()).hexdigest()


def _constant(value: Any) -> Any:
    if isinstance(value, types.CodeType):
        return _code_digest(value)
    if isinstance(value, frozenset):  # its repr's order depends on the process's hash seed
        return sorted(repr(_constant(item)) for item in value)
    if isinstance(value, tuple):
        return tuple(_constant(item) for item in value)
    return repr(value)


def _sha256(data: bytes = b"") -> hashlib._Hash:
    import hashlib  # here: only cache identities need it (importing it costs ~2 ms)

    return hashlib.sha256(data)
