"""A workflow's definition as stored with its runs, and what a resume does when it changed.

:func:`fingerprint` reads the step tree into JSON data stored with each stored run
(``RunRecord.definition``): every step's id pattern (a Loop's children as
``loop[*]/child``, as :func:`plait._fork.step_ids` names them) with a digest of the step's
own definition (its type and name, its code and configuration: an executor's bytecode and
closure, an agent's model, instructions and tools, a container's condition or selector;
not its children, which have digests of their own), and each container's children in
order. :func:`check` compares a run's stored definition with the code about to resume it:
a step that already ran (it has a checkpoint, recorded calls or a pending pause) and was
changed, removed or moved (other steps now come before it) makes the resume refuse with a
:class:`~plait.errors.DefinitionChangedError` listing what changed, unless the caller gives
a policy: ``on_changed="continue"`` resumes anyway, ``"restart_step"`` runs the changed
steps again (their checkpoints, and those of the steps inside them, are not restored).
Steps that have not run yet may change freely: that is what a fix before a resume is.

Module names are left out of the digests: a workflow run as ``python flow.py`` (module
``__main__``) resumes under ``plait runs resume`` (module ``flow``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from plait.errors import DefinitionChangedError, DefinitionError

if TYPE_CHECKING:
    from plait._node import StepNode
    from plait.workflow import Workflow

__all__ = ["ON_CHANGED", "Change", "check", "fingerprint", "static_id", "steps_ran"]

#: what a resume may do when the definition of a step that already ran changed
ON_CHANGED = ("refuse", "continue", "restart_step")
OnChanged = Literal["refuse", "continue", "restart_step"]

#: the layout of :func:`fingerprint`'s data (stored with runs: bump when it changes)
VERSION = 1

_ITERATION = re.compile(r"\[\d+\]")


def static_id(step_id: str) -> str:
    """A run's step id as its pattern in the definition: ``loop[2]/ask`` -> ``loop[*]/ask``."""
    return _ITERATION.sub("[*]", step_id)


def fingerprint(workflow: Workflow) -> dict[str, Any]:
    """The definition of ``workflow`` as stored with a run: ``{"version", "steps": {id:
    digest}, "children": {parent id or "": [child ids]}}`` (computed once per workflow)."""
    cached = workflow._definition
    if cached is None:
        from plait._fork import _tree  # the step id patterns, as checkpoints and graphs name them

        steps: dict[str, str] = {}
        children: dict[str, list[str]] = {}
        for step_id, node in _tree(workflow.nodes):
            steps[step_id] = _digest(_own_identity(node))
            children.setdefault(step_id.rpartition("/")[0], []).append(step_id)  # "loop[*]" in a Loop
        cached = {"version": VERSION, "steps": steps, "children": children}
        workflow._definition = cached
    return cached


async def steps_ran(storage: Any, record: Any, checkpointed: Iterable[str]) -> set[str]:
    """The ids of the steps stored run ``record`` has run: those ``checkpointed``, those it
    waits at, and those it made model or tool calls in (an agent step it crashed inside)."""
    ran = {*checkpointed, *(p["step_id"] for p in (record.pause or {}).get("pending", []))}
    ran.update(call.step_id for call in await storage.load_calls(record.run_id) if call.step_id)
    return ran


def _own_identity(node: StepNode) -> Any:
    """What defines ``node`` itself, its children left out."""
    from plait._executors import code_identity
    from plait._step import Step

    where = f"step {node.name!r}"
    identity: list[Any] = [type(node).__qualname__, node.step_type, node.name]
    if isinstance(node, Step):
        if node.executor is not None:
            identity.append(code_identity(node.executor, where))
        elif node.workflow is None:  # an agent or a team: what decides its answers
            own = getattr(node.agent, "cache_identity", None)
            try:
                identity.append(code_identity(node.agent, where) if own is None else own())
            except Exception:  # an identity that cannot be read here (no model yet): its name
                identity.append(getattr(node.agent, "name", None))
        return identity
    for attribute in (
        "evaluator",
        "selector",
        "end_condition",
        "max_iterations",
        "kind",
        "choices",
        "schema",
    ):
        value = getattr(node, attribute, None)
        if value is not None:
            identity.append([attribute, code_identity(value, where)])
    return identity


def _digest(identity: Any) -> str:
    import hashlib  # not with plait: a plain run never needs it

    text = json.dumps(_without_modules(identity), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: identity entries (plait._executors) that carry a module: function [kind, module, name, ...],
#: the others [kind, "module:name", ...]
_QUALIFIED = ("class", "object", "enum", "opaque", "again")


def _without_modules(value: Any) -> Any:
    if isinstance(value, list):
        if value and value[0] == "function" and len(value) > 2:
            return ["function", *(_without_modules(v) for v in value[2:])]
        if value and value[0] in _QUALIFIED and len(value) > 1 and isinstance(value[1], str):
            return [value[0], value[1].rpartition(":")[2], *(_without_modules(v) for v in value[2:])]
        return [_without_modules(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_modules(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Change:
    """A step that already ran whose definition is not what it was: ``how`` is "changed",
    "removed" or "moved" (``detail`` says what came before it then and now)."""

    step_id: str
    how: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.step_id}: {self.how}{f' ({self.detail})' if self.detail else ''}"


def changes(stored: dict[str, Any], current: dict[str, Any], ran: Iterable[str]) -> list[Change]:
    """The steps among ``ran`` (ids of a run, iterations included) whose definition in
    ``current`` differs from ``stored``; the containers around them count as ran too."""
    touched: set[str] = set()
    for step_id in ran:
        pattern = static_id(step_id)
        while pattern:
            touched.add(pattern)
            pattern = _parent(pattern)
    old_steps, new_steps = stored.get("steps", {}), current["steps"]
    old_children, new_children = stored.get("children", {}), current["children"]
    found = []
    for step_id in sorted(touched & set(old_steps)):  # a step the stored definition did not have ran nothing
        if step_id not in new_steps:
            found.append(Change(step_id, "removed"))
        elif old_steps[step_id] != new_steps[step_id]:
            found.append(Change(step_id, "changed"))
        else:
            siblings = step_id.rpartition("/")[0]  # the children key: "loop[*]" inside a Loop
            # its place is the step just before it (a removed one is reported as removed when it ran)
            before = _before([i for i in old_children.get(siblings, []) if i in new_steps], step_id)
            now = _before(new_children.get(siblings, []), step_id)
            if before != now:
                found.append(Change(step_id, "moved", f"after {_name(before)} then, after {_name(now)} now"))
    return found


def _parent(pattern: str) -> str:
    """The id pattern of the container around ``pattern`` ("" at the top)."""
    head, _, _ = pattern.rpartition("/")
    return head[:-3] if head.endswith("[*]") else head


def _before(siblings: list[str], step_id: str) -> str | None:
    """The id of the step just before ``step_id`` among ``siblings`` (None: it comes first)."""
    place = siblings.index(step_id) if step_id in siblings else 0
    return siblings[place - 1] if place else None


def _name(step_id: str | None) -> str:
    return "nothing" if step_id is None else repr(step_id.rpartition("/")[2])


def check(
    workflow: Workflow, run_id: str, stored: dict[str, Any] | None, ran: Iterable[str], on_changed: str
) -> list[Change]:
    """What a resume of run ``run_id`` may do: nothing changed (``[]``); changes the policy
    accepts (returned: with ``"restart_step"`` the caller runs them again); otherwise a
    :class:`~plait.errors.DefinitionChangedError`. A run stored before definitions were
    (``stored`` None, or another layout) is not checked."""
    if on_changed not in ON_CHANGED:
        raise DefinitionError(
            f"on_changed= expects one of {', '.join(map(repr, ON_CHANGED))}, got {on_changed!r}"
        )
    if stored is None or stored.get("version") != VERSION:
        return []
    found = changes(stored, fingerprint(workflow), ran)
    if found and on_changed == "refuse":
        lines = "\n".join(f"  - {change}" for change in found)
        raise DefinitionChangedError(
            f"Workflow {workflow.name!r}: run {run_id!r} cannot resume, the definition of steps it has "
            f"already run changed since it started:\n{lines}\nRevert the change, or resume with "
            "on_changed='continue' (keep their stored results) or on_changed='restart_step' (run them "
            "again); `--on-changed` in the CLI",
            changes=[str(change) for change in found],
        )
    return found


def restarted(checkpoints: dict[str, Any], found: Sequence[Change]) -> dict[str, Any]:
    """``checkpoints`` without those of the changed or moved steps and the steps inside them."""
    patterns = [change.step_id for change in found if change.how != "removed"]

    def inside(step_id: str) -> bool:
        pattern = static_id(step_id)
        return any(pattern == p or pattern.startswith((f"{p}/", f"{p}[*]")) for p in patterns)

    return {step_id: checkpoint for step_id, checkpoint in checkpoints.items() if not inside(step_id)}
