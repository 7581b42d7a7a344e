"""``import plait`` is lazy (PEP 562), and what a name reports does not depend on how it was reached.

Stored runs hold type tags (``plait._codec.class_key``: ``plait:StepOutput``); they must be the
same strings whether a class was first reached as ``plait.StepOutput`` or through the private
module that defines it, which is how the engine reaches it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import plait

#: every public name's ``__module__:__qualname__`` as the eager ``import plait`` reported them
#: (and as stored runs hold them); ``hookimpl`` is pluggy's marker instance, not a class
HOMES = {
    "Agent": "plait.agent:Agent",
    "AgentRunOutput": "plait.agent:AgentRunOutput",
    "Approval": "plait.approval:Approval",
    "AsyncRunHandle": "plait:AsyncRunHandle",
    "Budget": "plait:Budget",
    "BudgetExceededError": "plait.errors:BudgetExceededError",
    "CachePolicy": "plait:CachePolicy",
    "Condition": "plait.primitives:Condition",
    "DefinitionChangedError": "plait.errors:DefinitionChangedError",
    "DefinitionError": "plait.errors:DefinitionError",
    "FallbackModel": "plait.models:FallbackModel",
    "AudioPart": "plait.models:AudioPart",
    "FilePart": "plait.models:FilePart",
    "ImagePart": "plait.models:ImagePart",
    "TextPart": "plait.models:TextPart",
    "VideoPart": "plait.models:VideoPart",
    "Loop": "plait.primitives:Loop",
    "Parallel": "plait.primitives:Parallel",
    "ParallelContent": "plait:ParallelContent",
    "PendingInput": "plait:PendingInput",
    "QueuedRun": "plait:QueuedRun",
    "Worker": "plait:Worker",
    "PlaitError": "plait.errors:PlaitError",
    "RateLimit": "plait:RateLimit",
    "RejectedError": "plait.approval:RejectedError",
    "ReplayDivergenceError": "plait.errors:ReplayDivergenceError",
    "RetryPolicy": "plait.retry:RetryPolicy",
    "Router": "plait.primitives:Router",
    "RunContext": "plait:RunContext",
    "RunDiff": "plait:RunDiff",
    "RunEvent": "plait.events:RunEvent",
    "RunHandle": "plait:RunHandle",
    "RunStatus": "plait:RunStatus",
    "RunTimeoutError": "plait.errors:RunTimeoutError",
    "StateConflictError": "plait.errors:StateConflictError",
    "Step": "plait.primitives:Step",
    "StepContext": "plait:StepContext",
    "StepDiff": "plait:StepDiff",
    "StepError": "plait.errors:StepError",
    "StepInput": "plait:StepInput",
    "StepMetrics": "plait:StepMetrics",
    "StepNode": "plait.primitives:StepNode",
    "StepOutput": "plait:StepOutput",
    "StepTimeoutError": "plait.errors:StepTimeoutError",
    "StepType": "plait:StepType",
    "Steps": "plait.primitives:Steps",
    "Team": "plait.team:Team",
    "TeamRunEvent": "plait.events:TeamRunEvent",
    "Tool": "plait.agent:Tool",
    "Toolset": "plait.agent:Toolset",
    "ToolsetError": "plait.errors:ToolsetError",
    "Workflow": "plait.workflow:Workflow",
    "WorkflowExecutionInput": "plait:WorkflowExecutionInput",
    "WorkflowMetrics": "plait:WorkflowMetrics",
    "WorkflowRunOutput": "plait:WorkflowRunOutput",
    "WorkflowStepMetrics": "plait:WorkflowStepMetrics",
    "adiff_runs": "plait:adiff_runs",
    "allow_content_type": "plait:allow_content_type",
    "diff_runs": "plait:diff_runs",
    "set_rate_limits": "plait:set_rate_limits",
    "tool": "plait.agent:tool",
}

#: what neither ``import plait`` nor a one-step run without storage may import
HEAVY = ("pydantic", "rich", "sqlite3", "plait.storage", "plait._durable", "plait.agent", "plait.team")

_HOMES_CODE = """
import importlib, json, sys
from plait._public import PLAIT_EXPORTS
first = {first!r}
if first == "private":  # reach every name through the private module that defines it
    found = {{n: getattr(importlib.import_module(m), n) for m, ns in PLAIT_EXPORTS.items() for n in ns}}
    import plait
else:
    import plait
    found = {{}}
found.update({{n: getattr(plait, n) for n in plait.__all__ if n not in found and n != "hookimpl"}})
from plait._codec import class_key
print(json.dumps({{n: class_key(o) if isinstance(o, type) else f"{{o.__module__}}:{{o.__qualname__}}"
                  for n, o in found.items()}}))
"""


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_public_name_is_listed_here() -> None:
    assert sorted(HOMES) == sorted(n for n in plait.__all__ if n != "hookimpl")
    assert set(plait.__all__) <= set(dir(plait))


def test_type_tags_are_the_stored_strings_however_a_name_is_reached() -> None:
    for first in ("plait", "private"):
        assert json.loads(_run(_HOMES_CODE.format(first=first))) == HOMES, first


def test_import_plait_imports_none_of_plait_s_modules() -> None:
    code = "import sys, json\nimport plait\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('plait'))))"
    assert json.loads(_run(code)) == ["plait"]


def test_names_and_old_submodule_attributes_still_resolve() -> None:
    code = (
        "import plait\nprint(plait.errors.StepError.__name__, plait.workflow.Workflow is plait.Workflow)\n"
        "try:\n    plait.nosuchname\nexcept AttributeError as exc:\n    print(exc)"
    )
    assert _run(code).splitlines() == ["StepError True", "module 'plait' has no attribute 'nosuchname'"]


def test_a_one_step_run_without_storage_imports_nothing_heavy() -> None:
    code = (
        "import sys, json\nimport plait\n"
        f"heavy = {HEAVY!r}\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if m in heavy or m.split('.')[0] in heavy)\n"
        "before = loaded()\n"
        "from plait import Step, StepOutput, Workflow\n"
        "out = Workflow(name='w', steps=[Step(name='s', executor=lambda si: StepOutput(content=1))]).run(0)\n"
        "print(json.dumps([before, loaded(), out.content]))"
    )
    before, after, content = json.loads(_run(code))
    assert (before, after, content) == ([], [], 1)


#: the plugins of the development environment that neither observe runs nor start up
_NOT_FOR_A_RUN = ("plait_openai", "plait_anthropic", "plait_litellm", "plait_postgres", "plait_redis")
_NOT_FOR_A_RUN += ("plait_ray", "plait_nats", "plait_http")


def test_a_plugin_module_is_imported_when_one_of_its_hooks_is_needed() -> None:
    """A run imports the plugins that observe runs or start up (plait-otlp's ``on_startup``
    may configure tracing) and no other; a storage URL the plugins that register storage."""
    code = (
        "import sys, json\nfrom plait import Step, Workflow\n"
        "def plugins():\n"
        "    return sorted(m for m in sys.modules if m.startswith('plait_') and m.endswith('.plugin'))\n"
        "Workflow(name='w', steps=[Step(name='s', executor=lambda si: 1)]).run(0)\n"
        "after_run = plugins()\n"
        "from plait._lookup import registry\n"
        "registry().get('storage', 'redis')\n"
        "after_storage = plugins()\n"
        "listed = sorted(registry().plugins)\n"
        "print(json.dumps([after_run, after_storage, listed, plugins()]))"
    )
    after_run, after_storage, listed, everything = json.loads(_run(code))
    assert "plait_otlp.plugin" in after_run
    assert not [m for m in after_run if m.split(".")[0] in _NOT_FOR_A_RUN], after_run
    assert {"plait_redis.plugin", "plait_postgres.plugin"} <= set(after_storage)
    assert not [m for m in after_storage if m.split(".")[0] in ("plait_openai", "plait_ray")], after_storage
    # listing the plugins imports all of them, as before
    assert {"plait.builtins", "openai", "redis", "ray", "otlp"} <= set(listed)
    assert "plait_openai.plugin" in everything and "plait_ray.plugin" in everything


def test_the_cli_parser_imports_neither_the_engine_nor_storage() -> None:
    """``plait --help`` and ``--version`` build or skip the parser without the engine, pydantic,
    the storage layer, the console or rich (the plugins adding options are imported)."""
    code = (
        "import sys, json, contextlib, io\nfrom plait.cli import main\n"
        "heavy = ('pydantic', 'rich', 'sqlite3', 'asyncio', 'plait.storage', 'plait.console',"
        " 'plait._engine', 'plait.workflow', 'importlib.metadata')\n"
        "out = {}\n"
        "for args in (['--version'], ['--help'], ['run', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as printed, contextlib.suppress(SystemExit):\n"
        "        main(args)\n"
        "    out[args[0] + args[-1]] = [sorted(m for m in heavy if m in sys.modules), printed.getvalue()]\n"
        "print(json.dumps(out))"
    )
    out = json.loads(_run(code))
    assert [loaded for loaded, _ in out.values()] == [[], [], []], out
    assert out["--version--version"][1].startswith("plait ")
    assert "COMMAND" in out["--help--help"][1] and "--otlp" in out["run--help"][1]


def test_plait_runs_list_imports_only_what_a_listing_needs(tmp_path: Path) -> None:
    """``plait runs list`` reads the storage and draws a table: neither the engine, the console's
    live display, a model SDK, nor a plugin (plugins add nothing to ``plait runs``: their commands
    and ``plait run`` options are not asked for)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    _run(
        "from plait import Workflow\n"
        f"w = Workflow(name='listed', steps=[lambda si: 'ok'], storage={url!r})\n"
        "w.run(1); w.run(2); w.close()"
    )
    code = (
        "import sys, json, contextlib, io\nfrom plait.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as printed:\n"
        f"    code = main(['runs', 'list', '--storage', {url!r}])\n"
        "print(json.dumps([code, printed.getvalue(), sorted(sys.modules)]))"
    )
    code_, printed, modules = json.loads(_run(code))
    assert code_ == 0 and printed.count("listed") == 2 and "COMPLETED" in printed
    heavy = {
        "plait.workflow",
        "plait._engine",
        "plait.console",
        "plait.agent",
        "plait.team",
        "plait._durable",
    }
    heavy |= {"rich.live", "rich.markdown", "pygments", "httpx", "openai", "anthropic", "opentelemetry"}
    assert not [m for m in modules if m in heavy or m.split(".")[0] in heavy], modules
    assert not [m for m in modules if m.startswith("plait_")], "a plugin was imported"
