"""The checks a :class:`~plait.Workflow` makes of its options when it is built and run.

Each raises :class:`~plait.errors.DefinitionError` saying what was expected and what was
given, naming the workflow.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import DefinitionError

__all__ = [
    "check_flag",
    "check_options",
    "check_run_options",
    "check_sinks",
    "event_names",
    "slug",
    "storage_from_db",
    "warn_cache_without_storage",
]

if TYPE_CHECKING:
    from plait.workflow import Workflow


def check_sinks(sinks: Any, where: str) -> list[Any]:
    if isinstance(sinks, (str, bytes)) or not isinstance(sinks, (list, tuple)):
        hint = f" (did you mean sinks=[{sinks!r}]?)" if isinstance(sinks, str) else ""
        raise DefinitionError(f"{where}: sinks must be a list of sinks, got {sinks!r}{hint}")
    for sink in sinks:
        if not isinstance(sink, str) and not callable(getattr(sink, "handle", None)):
            raise DefinitionError(
                f"{where}: each sink must be a registered sink's name or an object with handle(event), got {sink!r}"
            )
    return list(sinks)


def check_run_options(name: str, user_id: Any, metadata: Any, dependencies: Any) -> None:
    where = f"Workflow {name!r}: run()"
    if user_id is not None and not isinstance(user_id, str):
        raise DefinitionError(f"{where}: user_id must be a str, got {user_id!r}")
    check_options(metadata, "metadata", where)
    check_options(dependencies, "dependencies", where)


def check_flag(value: Any, option: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise DefinitionError(f"Workflow {name!r}: {option} must be True or False, got {value!r}")
    return value


def check_options(value: Any, option: str, where: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise DefinitionError(f"{where}: {option} must be a dict, got {type(value).__name__} {value!r}")
    return value


def event_names(events: Sequence[Any], where: str) -> frozenset[str]:
    """The names of ``events_to_skip``: event classes (``StepStartedEvent``), their names
    (``"StepStarted"``) or Agno-style enum members whose value is such a name."""
    import enum

    from plait.events import Event

    if isinstance(events, (str, bytes)) or not isinstance(events, (list, tuple, set, frozenset)):
        raise DefinitionError(
            f"{where}: events_to_skip must be a list of event types or names, got {events!r}"
        )
    known: dict[str, type[Event]] = {}
    pending: list[type[Event]] = [Event]
    while pending:
        cls = pending.pop()
        default = getattr(cls, "__dataclass_fields__", {}).get("event")
        if default is not None and isinstance(default.default, str) and cls is not Event:
            known[default.default] = cls
        pending.extend(cls.__subclasses__())
    names: set[str] = set()
    for item in events:
        if isinstance(item, type) and issubclass(item, Event):
            name = item.__dataclass_fields__["event"].default
        elif isinstance(item, enum.Enum):
            name = item.value
        else:
            name = item
        if not isinstance(name, str) or name not in known:
            raise DefinitionError(
                f"{where}: events_to_skip: {item!r} is not an event type or name; "
                f"expected one of {', '.join(sorted(known))}"
            )
        names.add(name)
    return frozenset(names)


def storage_from_db(db: Any, storage: Any, where: str) -> Any:
    """Agno's ``db=``: plait's storage under Agno's name (a Storage object or a URL)."""
    from plait.storage import Storage

    if storage is not None:
        raise DefinitionError(f"{where}: give db= or storage=, not both (they are the same option)")
    if isinstance(db, (Storage, str)):
        return db
    raise DefinitionError(
        f"{where}: db= takes a plait storage: plait.storage.SqliteDb(db_file=...), InMemoryDb(), any "
        f"plait.storage.Storage, or a URL such as 'sqlite:///runs.db' or 'postgresql://...'; got "
        f"{type(db).__module__}.{type(db).__name__}. For PostgreSQL or Redis give the URL with storage="
    )


def slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "workflow"


def warn_cache_without_storage(workflow: Workflow) -> None:
    """A warning, not an error: such a workflow may still run nested in one with storage,
    where its steps' cache works."""
    pending = list(workflow.nodes)
    while pending:
        node = pending.pop(0)
        if node.cache is not None:
            warnings.warn(
                f"Workflow {workflow.name!r}: step {node.name!r} has cache= but workflow "
                f"{workflow.name!r} has no storage, so nothing is cached unless it runs nested in a "
                "workflow with storage; give storage= (or set $PLAIT_STORAGE)",
                UserWarning,
                stacklevel=3,
            )
            return
        pending.extend(node.children())
