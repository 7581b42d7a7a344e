"""Hook specifications: everything a plugin can add to plait.

A plugin is a module (or object) with functions marked ``@plait.hookimpl``,
exposed through the ``plait`` entry-point group::

    [project.entry-points.plait]
    my_plugin = "my_package.plugin"

Registration hooks receive a ``register`` callback (typed by the ``Register*``
protocols below, for plugins that annotate their hooks). Calling it hands the
value to plait, which checks it at once and records which plugin gave it, so a
mistake is reported against the plugin that made it. docs/plugins.md shows
every hook with the signature declared here (a test checks that they agree).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:  # for annotations only: importing the hookspecs stays cheap and acyclic
    import argparse

    from plait._io import StepOutput, WorkflowRunOutput
    from plait.models import Model
    from plait.plugins import Registry
    from plait.primitives import StepNode
    from plait.runners import Runner
    from plait.sinks import EventSink
    from plait.storage import Storage
    from plait.workflow import Workflow

__all__ = [
    "PROJECT_NAME",
    "RegisterCommand",
    "RegisterEventSink",
    "RegisterModel",
    "RegisterRunOption",
    "RegisterRunner",
    "RegisterStepType",
    "RegisterStorage",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "plait"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- The register callbacks the registration hooks receive ----------------------------


class RegisterStepType(Protocol):
    """``register(step_class)``, the callback of :func:`register_step_types`."""

    def __call__(self, step_class: type[StepNode], /) -> None: ...


class RegisterModel(Protocol):
    """``register(prefix, factory)``, the callback of :func:`register_models`:
    ``factory(model_name, **options)`` returns a Model."""

    def __call__(self, prefix: str, factory: Callable[..., Model], /) -> None: ...


class RegisterStorage(Protocol):
    """``register(scheme, factory)``, the callback of :func:`register_storage`:
    ``factory(url)`` returns a Storage."""

    def __call__(self, scheme: str, factory: Callable[[str], Storage], /) -> None: ...


class RegisterEventSink(Protocol):
    """``register(name, factory)``, the callback of :func:`register_event_sinks`:
    ``factory(**options)`` returns an EventSink."""

    def __call__(self, name: str, factory: Callable[..., EventSink], /) -> None: ...


class RegisterRunner(Protocol):
    """``register(name, factory)``, the callback of :func:`register_runners`:
    ``factory(**options)`` returns a Runner."""

    def __call__(self, name: str, factory: Callable[..., Runner], /) -> None: ...


class RegisterCommand(Protocol):
    """``register(name, configure, handler, help)``, the callback of :func:`register_commands`."""

    def __call__(
        self,
        name: str,
        configure: Callable[[argparse.ArgumentParser], object],
        handler: Callable[[argparse.Namespace], int],
        help: str = "",
    ) -> None: ...


class RegisterRunOption(Protocol):
    """``register(name, configure, apply)``, the callback of :func:`register_run_options`."""

    def __call__(
        self,
        name: str,
        configure: Callable[[argparse.ArgumentParser], object],
        apply: Callable[[argparse.Namespace], object],
    ) -> None: ...


# -- Registration: called once, when the registry is first needed ------------------


@hookspec
def register_step_types(register: RegisterStepType) -> None:
    """Add step types.

    ``register(step_class)``: ``step_class`` subclasses ``plait.StepNode`` and sets
    a unique ``step_type`` string. Registered types may appear anywhere in a
    workflow tree, and their ``step_type`` names them in events, spans and errors.
    """


@hookspec
def register_models(register: RegisterModel) -> None:
    """Add model providers.

    ``register(prefix, factory)``: ``factory(model_name, **options)`` returns a
    ``plait.models.Model``. ``Agent(model="prefix:model_name")`` then resolves
    through it. One prefix may be claimed by one plugin only.
    """


@hookspec
def register_storage(register: RegisterStorage) -> None:
    """Add storage backends.

    ``register(scheme, factory)``: ``factory(url)`` returns a storage backend for
    URLs such as ``scheme://...``. One scheme may be claimed by one plugin only.
    """


@hookspec
def register_event_sinks(register: RegisterEventSink) -> None:
    """Add event sinks.

    ``register(name, factory)``: ``factory(**options)`` returns an object with
    ``handle(event)`` (and optionally ``close()``), fed every event of a run.
    """


@hookspec
def register_runners(register: RegisterRunner) -> None:
    """Add runners that execute parallel branches.

    ``register(name, factory)``: ``factory(**options)`` returns a ``plait.runners.Runner``;
    ``Workflow(runner="name")`` and ``Parallel(..., runner="name")`` select it.
    """


@hookspec
def register_commands(register: RegisterCommand) -> None:
    """Add ``plait`` CLI subcommands.

    ``register(name, configure, handler, help)``: ``configure(parser)`` adds
    arguments to an ``argparse`` sub-parser; ``handler(args)`` runs the command
    and returns an exit code.
    """


@hookspec
def register_run_options(register: RegisterRunOption) -> None:
    """Add options to ``plait run``.

    ``register(name, configure, apply)``: ``configure(parser)`` adds the option
    ``--name`` to the ``plait run`` parser (``parser.add_argument("--otlp", ...)``);
    ``apply(args)`` is called with the parsed arguments before the run starts, and
    does nothing when its option was not given. plait-otlp adds ``--otlp`` this way.
    """


# -- Lifecycle: set up once, then observe runs as they happen ------------------------


@hookspec
def on_startup(registry: Registry) -> None:
    """Called once, when the plugin is imported and has registered, before the first run.

    Configure process-wide things here (an OpenTelemetry SDK from ``OTEL_*``
    variables, a connection pool). A failure is reported like a load error.
    """


@hookspec
def on_workflow_start(workflow: Workflow, run_id: str, session_id: str, nested_depth: int) -> None:
    """A workflow run (top-level or nested) is starting."""


@hookspec
def on_workflow_end(
    workflow: Workflow,
    run_id: str,
    status: str,
    output: WorkflowRunOutput | None,
    error: BaseException | None,
) -> None:
    """A workflow run ended; ``status`` is the run's final status (a ``plait.RunStatus`` value).
    ``output`` is None when it paused, was cancelled or failed (then ``error`` is set)."""


@hookspec
def on_step_start(step: StepNode, step_id: str, run_id: str) -> None:
    """A step (or container) is starting."""


@hookspec
def on_step_end(
    step: StepNode, step_id: str, run_id: str, output: StepOutput | None, error: BaseException | None
) -> None:
    """A step (or container) ended, with its output or the error it raised."""
