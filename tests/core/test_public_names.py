"""Public names report a public home: ``plait.StepOutput``, not ``plait._io.StepOutput``.

The rule: a class or function exported by a public module reports a public module
(no part of its dotted name starts with ``_``) that holds it under its name, so a
repr, a traceback or a pickle names a place users import it from. A name defined
in a public module keeps that module (``plait.errors.StepError``); one defined in
a private module reports the public module that exports it: ``plait`` for the
top-level names, ``plait.storage`` for the storage base types.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import pkgutil
import types
import typing

import pytest

import plait
from plait import PendingInput, RunStatus, StepMetrics, StepOutput, WorkflowRunOutput


def _public_modules() -> list[str]:
    names = ["plait"]
    for info in pkgutil.walk_packages(plait.__path__, "plait."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _exported(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [
        (name, getattr(module, name))
        for name in getattr(module, "__all__", ())
        if isinstance(getattr(module, name), (type, types.FunctionType))
    ]


@pytest.mark.parametrize("module_name", _public_modules())
def test_every_exported_name_reports_a_public_home(module_name: str) -> None:
    wrong = []
    for name, obj in _exported(module_name):
        home = obj.__module__  # type: ignore[attr-defined]
        private = any(part.startswith("_") for part in home.split("."))
        if private or getattr(importlib.import_module(home), obj.__qualname__, None) is not obj:  # type: ignore[attr-defined]
            wrong.append(f"{module_name}.{name} reports {home}")
    assert not wrong, wrong


def test_the_top_level_names_defined_in_private_modules_report_plait() -> None:
    for name in ("StepOutput", "StepInput", "RunContext", "StepContext", "PendingInput", "CachePolicy"):
        assert getattr(plait, name).__module__ == "plait", name
    assert repr(StepOutput) == "<class 'plait.StepOutput'>"
    assert plait.StepError.__module__ == "plait.errors"  # defined in a public module: kept
    from plait.storage import Storage, StorageError

    assert (Storage.__module__, StorageError.__module__) == ("plait.storage", "plait.storage")


def test_public_dataclasses_still_pickle_and_resolve_their_annotations() -> None:
    output = StepOutput(
        content={"a": 1}, metrics=StepMetrics(input_tokens=3), steps=[StepOutput(content="x")]
    )
    assert pickle.loads(pickle.dumps(output)) == output
    run = WorkflowRunOutput("r", "w", "w", "s", RunStatus.COMPLETED, content="done", step_outputs=[output])
    assert pickle.loads(pickle.dumps(run)) == run
    pending = PendingInput(step_id="s", step_name="s", kind="confirm", prompt="ok?")
    assert pickle.loads(pickle.dumps(pending)) == pending
    assert pickle.loads(pickle.dumps(RunStatus.PAUSED)) is RunStatus.PAUSED
    # annotations resolve although the class now names plait, not the module that defines it
    assert typing.get_type_hints(StepOutput)["steps"] == list[StepOutput] | None
    assert {f.name: f.type for f in dataclasses.fields(StepOutput)}["metrics"] == StepMetrics | None
    from plait._durable import dump_output, load_output  # pydantic validates StepOutput

    assert load_output(dump_output(output, "s"), "s") == output
