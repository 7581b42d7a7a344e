"""Hook specifications: everything a plugin can add to plait.

A plugin is a module (or object) with functions marked ``@plait.hookimpl``,
exposed through the ``plait`` entry-point group::

    [project.entry-points.plait]
    my_plugin = "my_package.plugin"

Registration hooks receive a ``register`` callback. Calling it hands the value
to plait, which checks it at once and records which plugin gave it, so a
mistake is reported against the plugin that made it.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "plait"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# -- Registration: called once, when the registry is first needed ------------------


@hookspec
def register_step_types(register: Any) -> None:
    """Add step types.

    ``register(step_class)``: ``step_class`` subclasses ``plait.StepNode`` and sets
    a unique ``step_type`` string. Registered types may appear anywhere in a
    workflow tree, and their ``step_type`` names them in events, spans and errors.
    """


@hookspec
def register_models(register: Any) -> None:
    """Add model providers.

    ``register(prefix, factory)``: ``factory(model_name, **options)`` returns a
    ``plait.models.Model``. ``Agent(model="prefix:model_name")`` then resolves
    through it. One prefix may be claimed by one plugin only.
    """


@hookspec
def register_storage(register: Any) -> None:
    """Add storage backends.

    ``register(scheme, factory)``: ``factory(url)`` returns a storage backend for
    URLs such as ``scheme://...``. One scheme may be claimed by one plugin only.
    """


@hookspec
def register_event_sinks(register: Any) -> None:
    """Add event sinks.

    ``register(name, factory)``: ``factory(**options)`` returns an object with
    ``handle(event)`` (and optionally ``close()``), fed every event of a run.
    """


@hookspec
def register_runners(register: Any) -> None:
    """Add runners that execute parallel branches.

    ``register(name, factory)``: ``factory(**options)`` returns a ``plait.runners.Runner``;
    ``Workflow(runner="name")`` and ``Parallel(..., runner="name")`` select it.
    """


@hookspec
def register_commands(register: Any) -> None:
    """Add ``plait`` CLI subcommands.

    ``register(name, configure, handler, help)``: ``configure(parser)`` adds
    arguments to an ``argparse`` sub-parser; ``handler(args)`` runs the command
    and returns an exit code.
    """


@hookspec
def register_run_options(register: Any) -> None:
    """Add options to ``plait run``.

    ``register(name, configure, apply)``: ``configure(parser)`` adds the option
    ``--name`` to the ``plait run`` parser (``parser.add_argument("--otlp", ...)``);
    ``apply(args)`` is called with the parsed arguments before the run starts, and
    does nothing when its option was not given. plait-otlp adds ``--otlp`` this way.
    """


# -- Lifecycle: set up once, then observe runs as they happen ------------------------


@hookspec
def on_startup(registry: Any) -> None:
    """Called once, after every plugin registered, before the first run uses the registry.

    Configure process-wide things here (an OpenTelemetry SDK from ``OTEL_*``
    variables, a connection pool). A failure is reported like a load error.
    """


@hookspec
def on_workflow_start(workflow: Any, run_id: str, session_id: str, nested_depth: int) -> None:
    """A workflow run (top-level or nested) is starting."""


@hookspec
def on_workflow_end(
    workflow: Any, run_id: str, status: str, output: Any, error: BaseException | None
) -> None:
    """A workflow run ended; ``status`` is the run's final status."""


@hookspec
def on_step_start(step: Any, step_id: str, run_id: str) -> None:
    """A step (or container) is starting."""


@hookspec
def on_step_end(step: Any, step_id: str, run_id: str, output: Any, error: BaseException | None) -> None:
    """A step (or container) ended, with its output or the error it raised."""
