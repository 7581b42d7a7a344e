"""Images in stored runs (issue #20, item 3): a 2 MB image is stored once, by its SHA-256, and
comes back byte for byte after a resume, a cache hit and a replay, each in a new process, on
SQLite, PostgreSQL and Redis; the real OpenAI SDK sends it to the local OpenAI-protocol server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from plait.storage import Storage, resolve_storage
from tests.durability.media_flow import IMAGE
from tests.durability.test_replay import backend
from tests.durability.tool_loop import storage_for
from tests.servers.openai_server import OpenAIServer

__all__ = ["backend"]

SCRIPT = Path(__file__).with_name("media_flow.py")
ROOT = Path(__file__).resolve().parents[2]
DIGEST = hashlib.sha256(IMAGE).hexdigest()
ENCODED = base64.b64encode(IMAGE).decode()


def _flow(
    backend: str, server: OpenAIServer, mode: str, run_id: str, log: Path, **env: str
) -> dict[str, Any]:
    environment = {**os.environ, "PLAIT_TEST_LOG": str(log), "PYTHONPATH": str(ROOT), **env}
    if "PLAIT_FAIL_CHECK" not in env:
        environment.pop("PLAIT_FAIL_CHECK", None)
    done = subprocess.run(
        [sys.executable, str(SCRIPT), backend, server.base_url, mode, run_id],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def _stored(spec: str, run_id: str) -> tuple[int, dict[str, str], list[Any]]:
    """The size of the run's checkpoints as JSON, the image's payload, and its call records."""
    storage = resolve_storage(storage_for(spec))
    assert isinstance(storage, Storage)
    try:
        await storage.setup()
        checkpoints = await storage.load_checkpoints(run_id)
        size = sum(len(c.model_dump_json()) for c in checkpoints)
        payloads = await storage.load_payloads([DIGEST])
        calls = await storage.load_calls(run_id)
        requests = await storage.load_payloads([c.request for c in calls])
        return size, payloads, [json.loads(text) for text in requests.values()]
    finally:
        await storage.close()


def _sent_image(body: dict[str, Any]) -> str:
    user = body["messages"][-1]
    assert user["role"] == "user"
    assert [p["type"] for p in user["content"]] == ["text", "image_url"]
    assert user["content"][0]["text"] == "Describe this image of a cat."
    url = user["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    return str(url.partition(",")[2])


@pytest.mark.slow  # four processes that each send or load 2 MB: ~15 s
def test_an_image_is_stored_once_and_comes_back_after_resume_cache_hit_and_replay(
    backend: str, tmp_path: Path
) -> None:
    log = tmp_path / "effects.log"
    run_id = f"media-{uuid.uuid4().hex[:8]}"
    with OpenAIServer() as server:
        failed = _flow(backend, server, "run", run_id, log, PLAIT_FAIL_CHECK="1")
        assert failed["status"] == "error" and "check failed on purpose" in failed["error"], failed
        assert len(server.chat_requests) == 1
        assert _sent_image(server.chat_requests[0]) == ENCODED  # the SDK sent the bytes as they are

        size, payloads, requests = asyncio.run(_stored(backend, run_id))
        assert payloads == {DIGEST: ENCODED}  # the bytes, once, under their SHA-256
        assert size < 20_000, size  # the checkpoints refer to the image; they do not hold it
        [request] = [r for r in requests if "messages" in r]
        assert ENCODED not in json.dumps(request)
        assert request["messages"][-1]["content"][1] == {
            "kind": "image",
            "media_type": "image/png",
            "blob": DIGEST,
            "size": len(IMAGE),
        }

        resumed = _flow(backend, server, "resume", run_id, log)  # a new process: bytes from storage
        assert resumed["status"] == "COMPLETED", resumed
        assert resumed["content"] == DIGEST
        assert len(server.chat_requests) == 1  # 'look' came back from its checkpoint

        replayed = _flow(backend, server, "replay", run_id, log)
        assert replayed["status"] == "COMPLETED", replayed
        assert replayed["content"] == DIGEST
        assert len(server.chat_requests) == 1  # answered from the record: the request matched

        again = _flow(backend, server, "run", f"{run_id}-2", log)
        assert again["status"] == "COMPLETED", again
        assert again["content"] == DIGEST
        assert len(server.chat_requests) == 2
        assert _sent_image(server.chat_requests[1]) == ENCODED  # from the cache, byte for byte
    assert log.read_text().splitlines() == ["load"]  # every later 'load' was a cache hit
