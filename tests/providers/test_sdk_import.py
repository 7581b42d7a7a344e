"""A provider's SDK is imported off the event loop at its first call.

Imported on the loop, a large SDK (hundreds of milliseconds to seconds) stops every other
branch, stream and lease renewal of the process. Each case runs in a fresh interpreter (the
SDK not yet imported), with an import hook that notes the thread the SDK's import ran in,
and a parallel branch that keeps ticking while the model's branch makes its first call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib.abc, json, sys, threading

    SDK = sys.argv[1]
    seen = []

    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == SDK:
                seen.append(threading.current_thread() is threading.main_thread())
            return None

    sys.meta_path.insert(0, Watch())

    from plait import Agent, Parallel, Step, Workflow

    if SDK == "openai":
        from plait_openai import OpenAIModel
        model = OpenAIModel("gpt-4o-mini", base_url=sys.argv[2], api_key="test")
    else:
        from plait_anthropic import AnthropicModel
        model = AnthropicModel("claude-haiku-4-5", base_url=sys.argv[2], api_key="test")
    assert SDK not in sys.modules, "imported before the first call"

    async def ticking(step_input):
        ticks = 0
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.001)
        return ticks

    done = None

    async def main():
        global done
        done = asyncio.Event()
        agent = Agent(name="A", model=model)

        async def call(step_input):
            try:
                return (await agent.arun("hello")).content
            finally:
                done.set()

        workflow = Workflow(name="W", steps=[Parallel(Step(name="call", executor=call),
                                                      Step(name="tick", executor=ticking), name="both")])
        output = await workflow.arun("go")
        print(json.dumps({"status": output.status.value, "on_main_thread": seen,
                          "content": output.content}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_the_first_call_imports_the_sdk_off_the_event_loop(sdk: str) -> None:
    server = OpenAIServer() if sdk == "openai" else AnthropicServer()
    with server:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, sdk, server.base_url],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "COMPLETED"
    # the SDK's top-level import was looked up once, from a worker thread, not the loop's
    assert result["on_main_thread"] == [False], result
