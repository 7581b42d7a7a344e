"""`import plait` stays light: no provider SDK, not even once plugins are loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ["openai", "anthropic", "litellm", "ray", "psycopg", "redis", "opentelemetry.sdk"]

CODE = """
import json, sys
import plait
before = sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m == "opentelemetry.sdk")
from plait.plugins import get_registry
registry = get_registry()
after = sorted(m for m in sys.modules if m.split(".")[0] in {heavy} or m == "opentelemetry.sdk")
print(json.dumps({{"before": before, "after": after, "plugins": sorted(registry.plugins)}}))
"""


def test_import_plait_and_loading_plugins_import_no_sdk() -> None:
    code = CODE.format(heavy=set(HEAVY))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    data = json.loads(result.stdout)
    assert data["before"] == [] and data["after"] == []
    assert "plait.builtins" in data["plugins"]


def test_import_plait_and_building_a_plain_workflow_import_no_pydantic() -> None:
    code = (
        "import sys\nfrom plait import Step, Workflow\n"
        "def f(step_input) -> str:\n    return 'x'\n"
        "Workflow(name='w', steps=[Step(name='s', executor=f)])\n"
        "print('pydantic' in sys.modules, 'plait.storage' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_a_run_without_an_opentelemetry_sdk_does_not_import_the_api() -> None:
    """Nothing can have installed a provider before the API was imported: plait does not
    import it (about 10 ms) until then; set up afterwards, tracing still starts."""
    code = (
        "import sys\nfrom plait import Step, Workflow\n"
        "wf = Workflow(name='w', steps=[Step(name='s', executor=lambda si: 'x')])\n"
        "wf.run()\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "trace.set_tracer_provider(provider)\n"
        "wf.run()\n"
        "print(sorted(s.name for s in exporter.get_finished_spans()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    imported, spans = result.stdout.splitlines()
    assert imported == "False"
    assert spans == "['invoke_workflow w', 'step s']"


def test_import_and_a_plain_run_leave_out_what_only_some_features_need() -> None:
    """uuid (a UUID in content), hashlib (cache identities) and the email package (an
    HTTP-date Retry-After) load when used, not with plait: together ~9 ms of import."""
    code = (
        "import sys\nfrom plait import Step, Workflow\n"
        "print(sorted(m for m in ('uuid', 'hashlib', 'email.utils') if m in sys.modules))\n"
        "Workflow(name='w', steps=[Step(name='s', executor=lambda si: 'x')]).run()\n"
        "print(sorted(m for m in ('uuid', 'hashlib') if m in sys.modules))\n"
        "import uuid\nfrom plait._codec import decode, encode\n"
        "u = uuid.uuid4()\nprint(decode(encode(u, 'u'), 'u') == u)\n"
        "from plait.retry import parse_retry_after\n"
        "print(parse_retry_after({'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT'}) == 0.0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split("\n")[:4] == ["[]", "[]", "True", "True"]


def test_the_cli_module_does_not_import_the_storage_layer() -> None:
    """``plait --version`` and ``--help`` stay fast: the CLI names its default store from
    plait._defaults, without importing plait.storage (and pydantic with it)."""
    code = "import sys\nimport plait.cli\nprint('plait.storage' in sys.modules, 'pydantic' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]
