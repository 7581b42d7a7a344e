"""Every exception plait raises on purpose, in one place.

Errors say what was expected, what was given, and where (the step path), so a
user never has to read plait's source to learn what went wrong.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ContextOverflowError",
    "DefinitionChangedError",
    "DefinitionError",
    "MissingDependencyError",
    "ModelConnectionError",
    "ModelError",
    "ModelTimeoutError",
    "PlaitError",
    "PluginError",
    "RateLimitError",
    "ReplayDivergenceError",
    "RunTimeoutError",
    "ServerError",
    "StateConflictError",
    "StepError",
    "StepTimeoutError",
    "ToolsetError",
    "error_class_for_status",
    "error_for_status",
    "root_cause",
]


class PlaitError(Exception):
    """Base class of every error plait raises."""


class DefinitionError(PlaitError, ValueError):
    """A workflow, step or agent was defined wrongly; raised at construction."""


class StepError(PlaitError):
    """A step failed during a run.

    ``step_path`` is the stable id of the failing step (``"research/parallel/web"``);
    the original exception is chained as ``__cause__``.
    """

    def __init__(self, message: str, *, step_path: str, step_name: str = "") -> None:
        super().__init__(message)
        self.step_path = step_path
        self.step_name = step_name


class BudgetExceededError(StepError):
    """A call would cross a hard limit of a :class:`~plait.Budget`; the run stops before it.

    ``limit`` names the limit (``"max_requests"``, ``"max_total_tokens"``, ``"max_cost"``, ...),
    ``maximum`` its value, ``used`` what was spent before the call and ``needed`` what the call
    would add (for tokens and cost an estimate, see :class:`~plait.Budget`); ``step_path`` is
    the step that made the call ("" outside a workflow) and ``budget_of`` says whose budget it
    is (``"workflow 'Research'"``, ``"step 'write'"``, ``"agent 'Writer'"``). It is a
    :class:`StepError`, so it reaches the caller as it is instead of being wrapped, and no
    retry policy retries it.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        maximum: float,
        used: float,
        needed: float,
        budget_of: str,
        budget: object = None,
        step_path: str = "",
        step_name: str = "",
    ) -> None:
        super().__init__(message, step_path=step_path, step_name=step_name)
        self.limit = limit
        self.maximum = maximum
        self.used = used
        self.needed = needed
        self.budget_of = budget_of
        self.budget = budget


class StepTimeoutError(PlaitError, TimeoutError):
    """A step ran longer than its ``timeout``."""


class RunTimeoutError(PlaitError, TimeoutError):
    """A whole run ran longer than the workflow's ``timeout``."""


class StateConflictError(PlaitError):
    """Concurrent branches changed one session-state key in ways that cannot be merged."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


class ReplayDivergenceError(PlaitError):
    """A replayed run (or a cassette in replay mode) made a model or tool call its record
    does not have: a prompt, a tool or the steps changed. ``step_id`` names the step
    (``""`` for an agent run outside a workflow); ``recorded`` and ``request`` are the
    recorded request at that place (None when there was none) and the new one, as JSON;
    the message shows their diff."""

    def __init__(
        self, message: str, *, step_id: str, recorded: object = None, request: object = None
    ) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.recorded = recorded
        self.request = request


class DefinitionChangedError(DefinitionError):
    """A stored run cannot resume: steps it has already run were changed, removed or moved
    since it started (plait._definition). ``changes`` lists them, one line each
    (``"step: changed"``); resume with ``on_changed="continue"`` or ``"restart_step"``."""

    def __init__(self, message: str, *, changes: list[str]) -> None:
        super().__init__(message)
        self.changes = changes


class ToolsetError(PlaitError):
    """A toolset's connection failed during a run (an MCP server died, say): unlike a tool's
    own error, which goes back to the model, it stops the agent's run, since the model cannot
    correct it. ``toolset`` names the toolset (its server), ``tool`` the tool being called
    ("" when no call was being made)."""

    def __init__(self, message: str, *, toolset: str, tool: str = "") -> None:
        super().__init__(message)
        self.toolset = toolset
        self.tool = tool


class PluginError(PlaitError):
    """A plugin failed to load or registered something invalid."""


class MissingDependencyError(PlaitError, ImportError):
    """An optional package is needed; the message says what to install."""


class ModelError(PlaitError):
    """A model provider call failed.

    ``provider`` names the provider, ``status_code`` is the HTTP status when there
    was one, ``retry_after`` the server's requested delay in seconds, and the
    message carries the provider's own words.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after


class RateLimitError(ModelError):
    retryable = True


class ModelTimeoutError(ModelError, TimeoutError):
    retryable = True


class ModelConnectionError(ModelError):
    retryable = True


class ServerError(ModelError):
    retryable = True


class BadRequestError(ModelError):
    pass


class AuthenticationError(ModelError):
    pass


class ContextOverflowError(BadRequestError):
    """The request did not fit the model's context window."""


def error_class_for_status(status: int) -> type[ModelError]:
    """The error class an HTTP status means, for every provider: 429 a rate limit, 401 and
    403 authentication, 408 a timeout, 5xx a server error (529 "overloaded" included),
    any other 4xx a bad request; anything else a plain :class:`ModelError`."""
    if status == 429:
        return RateLimitError
    if status in (401, 403):
        return AuthenticationError
    if status == 408:
        return ModelTimeoutError
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return ModelError


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
    context_overflow: bool = False,
) -> ModelError:
    """The classified error for an HTTP error answer (see :func:`error_class_for_status`).

    ``context_overflow``: the provider's answer says the prompt did not fit, which
    makes a bad request a :class:`ContextOverflowError`.
    """
    cls = error_class_for_status(status)
    if context_overflow and cls is BadRequestError:
        cls = ContextOverflowError
    return cls(message, provider=provider, status_code=status, retry_after=retry_after)


def root_cause(exc: BaseException) -> BaseException:
    """The user's exception behind plait's :class:`StepError` wrappers (what a retry
    filter judges and a span records), or ``exc`` itself."""
    while isinstance(exc, StepError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
