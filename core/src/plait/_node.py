"""The base of every node in a workflow tree: :class:`StepNode`.

It lives apart from the primitives (:mod:`plait.primitives`, where users import it)
so the layers below the tree's users, the executor and the registry of step types,
can know what a node is without importing every primitive. It imports only the
vocabulary (errors, retry policies, checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from plait._checks import check_number, check_seconds
from plait.errors import DefinitionError
from plait.events import StepCompletedEvent, StepStartedEvent
from plait.retry import RetryPolicy

if TYPE_CHECKING:
    from plait._context import StepContext
    from plait._io import StepInput, StepOutput

__all__ = ["OnError", "RunsAsStep", "StepNode"]

OnError = Literal["fail", "skip"]


@runtime_checkable
class RunsAsStep(Protocol):
    """Something a :class:`~plait.primitives.Step` runs: an agent, a team, a workflow, or
    an object of a plugin's. ``Step(agent=x)`` (or ``x`` in ``steps=[...]``) calls
    ``await x.run_as_step(step_input, ctx)`` in the step's context and takes its output."""

    name: str

    async def run_as_step(self, step_input: StepInput, ctx: StepContext) -> StepOutput: ...


class StepNode:
    """Base class of every node in a workflow tree.

    A subclass sets a unique :attr:`step_type`, calls ``super().__init__(name, ...)``
    and implements :meth:`execute`. Register it with the ``register_step_types``
    hook to list it in ``plait plugins`` and let it wrap foreign objects (:meth:`wrap`).

    Policies every node accepts: ``retry`` (a :class:`RetryPolicy`; Agno's
    ``max_retries=N`` works too), ``timeout`` in seconds, ``on_error`` ``"fail"``
    (default) or ``"skip"`` (Agno's ``skip_on_failure=True``), and ``cache``
    (``True``, a TTL in seconds or a :class:`~plait.CachePolicy`: reuse the stored
    output while the node and its input are unchanged; needs workflow storage).
    """

    step_type: ClassVar[str] = "Step"
    #: the events that report this node's start and end in ``stream_events=True`` (a
    #: container sets Agno's, e.g. ParallelExecutionStartedEvent); subclasses of the step
    #: events, filled with :meth:`started_event_fields` and :meth:`completed_event_fields`
    started_event: ClassVar[type[StepStartedEvent]] = StepStartedEvent
    completed_event: ClassVar[type[StepCompletedEvent]] = StepCompletedEvent
    #: True when the node runs user code synchronously (only threads can time it out).
    runs_blocking_code: bool = False

    def __init__(
        self,
        name: str | None,
        *,
        description: str | None = None,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        on_error: OnError | None = None,
        skip_on_failure: bool | None = None,
        cache: Any = None,
    ) -> None:
        what = f"{type(self).__name__}"
        if not isinstance(name, str) or not name.strip():
            raise DefinitionError(f"{what}: expected a non-empty name, got {name!r}")
        self.name = name
        self.description = description
        if retry is not None and max_retries is not None:
            raise DefinitionError(f"{what} {name!r}: give either retry= or max_retries=, not both")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise DefinitionError(f"{what} {name!r}: retry must be a RetryPolicy, got {retry!r}")
        if max_retries is not None:
            check_number(max_retries, f"{what} {name!r}", "max_retries", integer=True)
            retry = RetryPolicy.from_max_retries(max_retries) if max_retries > 0 else None
        self.retry = retry
        check_seconds(timeout, f"{what} {name!r}")
        self.timeout = timeout
        if skip_on_failure is not None:
            if on_error is not None:
                raise DefinitionError(f"{what} {name!r}: give either on_error= or skip_on_failure=, not both")
            on_error = "skip" if skip_on_failure else "fail"
        if on_error not in (None, "fail", "skip"):
            raise DefinitionError(f"{what} {name!r}: on_error must be 'fail' or 'skip', got {on_error!r}")
        self.on_error: OnError = on_error or "fail"
        self.cache = None
        if cache is not None:
            from plait._durable import CachePolicy

            self.cache = CachePolicy.coerce(cache, f"{what} {name!r}")
        self._auto_named = False

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        """Do this node's work and return its output."""
        raise NotImplementedError(f"{type(self).__name__} does not implement execute()")

    def children(self) -> Sequence[StepNode]:
        """The nodes directly inside this one (for validation, graphs and listings)."""
        return ()

    def started_event_fields(self) -> dict[str, Any]:
        """The fields of :attr:`started_event` besides those every step event has: what is
        known of this node before it runs (a Parallel's branch count, a Loop's limit)."""
        return {}

    def completed_event_fields(self, output: StepOutput) -> dict[str, Any]:
        """The fields of :attr:`completed_event` besides those every step event has, taken
        from the node's finished ``output`` (a condition's result, a router's selection)."""
        return {}

    def load_content(self, content: Any) -> Any:
        """Rebuild typed content from its JSON form (a restored checkpoint, a cache hit).

        The default returns the JSON data as it is; a node whose content is a
        pydantic model validates it back into that model.
        """
        return content

    def cache_identity(self) -> Any:
        """What, besides its input, decides this node's output (part of its cache key)."""
        # lower case: the spelling of step types before plait adopted Agno's, so cache keys stay put
        return [self.step_type.lower(), self.name, [child.cache_identity() for child in self.children()]]

    @classmethod
    def wrap(cls, obj: Any) -> StepNode | None:
        """Turn a foreign object placed in ``steps=[...]`` into a node of this type, or None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
