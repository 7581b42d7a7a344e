"""Media given to a workflow run (issue #20 leftovers): ``workflow.run(images=..., audio=...,
videos=..., files=...)`` reach every step's StepInput (Agno's ``step_input.images``...), an agent
step sends them through the real OpenAI SDK to the local OpenAI-protocol server, a step's
``StepOutput(images=...)`` reaches the steps after it, and the run's media are stored once (by
digest) so a resume after an approval, a cache hit and a replay still have them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plait import (
    Agent,
    Approval,
    AudioPart,
    FilePart,
    ImagePart,
    RunStatus,
    Step,
    StepInput,
    StepOutput,
    VideoPart,
    Worker,
    Workflow,
)
from plait.errors import DefinitionError
from plait_openai import OpenAIModel
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = ["openai_server"]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
OTHER_PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 4
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_url(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": f"data:{media_type};base64,{b64(data)}"}}


@pytest.fixture
async def model(openai_server: OpenAIServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel("gpt-4o", base_url=openai_server.base_url, api_key="k") as opened:
        yield opened


def forget_blobs(*data: bytes) -> None:
    """As a new process would start: nothing of these bytes in this process's blob cache."""
    from plait import _blobs

    for item in data:
        _blobs._cache.pop(hashlib.sha256(item).hexdigest(), None)
    _blobs._written.clear()


async def test_the_run_media_reach_every_step_and_the_agent_request(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    seen: list[dict[str, Any]] = []

    def note(step_input: StepInput) -> str:
        seen.append(step_input.media())
        return f"Describe {step_input.input}."

    flow = Workflow(
        name="Look",
        steps=[Step(name="note", executor=note), Step(name="look", agent=Agent(name="Looker", model=model))],
    )
    output = await flow.arun(
        "the cat", images=[PNG, "https://example.com/cat.jpg"], files=[FilePart(data=PDF, filename="r.pdf")]
    )
    assert output.content == "Echo: Describe the cat."
    assert seen == [
        {
            "images": [ImagePart(data=PNG), ImagePart(url="https://example.com/cat.jpg")],
            "files": [FilePart(data=PDF, filename="r.pdf")],
        }
    ]
    assert openai_server.chat_requests[-1]["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe the cat."},
            image_url(PNG),
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {
                "type": "file",
                "file": {"file_data": f"data:application/pdf;base64,{b64(PDF)}", "filename": "r.pdf"},
            },
        ],
    }
    # streamed, and with one part given alone (not in a list)
    events = [e async for e in flow.arun("the dog", images=ImagePart(data=OTHER_PNG), stream=True)]
    assert events[-1].content == "Echo: Describe the dog."
    assert openai_server.chat_requests[-1]["messages"][-1]["content"][1] == image_url(OTHER_PNG)


def test_a_step_output_s_media_reach_the_steps_after_it() -> None:
    received: list[dict[str, Any]] = []

    def make(step_input: StepInput) -> StepOutput:
        return StepOutput(content="drawn", images=[ImagePart(data=OTHER_PNG)])

    def after(step_input: StepInput) -> str:
        received.append(step_input.media())
        return "done"

    flow = Workflow(name="Draw", steps=[Step(name="make", executor=make), Step(name="after", executor=after)])
    flow.run("x", images=[PNG])
    assert received == [{"images": [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)]}]  # the input's first
    executed: list[Any] = []

    def python(workflow: Workflow, execution_input: Any) -> str:  # a fully-Python workflow gets them too
        executed.append((execution_input.images, execution_input.audio))
        return "ok"

    Workflow(name="Py", steps=python).run("x", images=[PNG])
    assert executed == [([ImagePart(data=PNG)], [])]
    flow.start("y", images=PNG).wait()  # start() takes them too, one part alone or a list
    assert received[-1] == {"images": [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)]}


def test_a_nested_workflow_s_steps_get_the_media() -> None:
    received: list[Any] = []
    inner = Workflow(name="inner", steps=[Step(name="look", executor=lambda i: received.append(i.images))])
    Workflow(name="outer", steps=[Step(name="pre", executor=lambda i: "pre"), inner]).run("x", images=[PNG])
    assert received == [[ImagePart(data=PNG)]]


def test_wrong_media_are_clear_errors_naming_the_option() -> None:
    flow = Workflow(name="Look", steps=[Step(name="s", executor=lambda i: "x")])
    with pytest.raises(
        DefinitionError,
        match=r"Workflow 'Look': run\(\) images=: expected ImagePart, a URL, a path or bytes, got int",
    ):
        flow.run("x", images=[42])
    with pytest.raises(
        DefinitionError, match=r"videos=: expected VideoPart, .* got ImagePart \(it goes in images=\)"
    ):
        flow.run("x", videos=[ImagePart(data=PNG)])
    with pytest.raises(
        DefinitionError, match=r"audio=: expected a list of AudioPart, URLs, paths or bytes, got a dict"
    ):
        asyncio.run(flow.arun("x", audio={"a": 1}))
    with pytest.raises(DefinitionError, match=r"start\(\) files=: .* is not a file \(it does not exist\)"):
        flow.start("x", files=["no/such/report.pdf"])


async def test_the_media_survive_a_resume_after_an_approval_stored_once(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    database = tmp_path / "runs.db"

    def build() -> Workflow:
        look = Step(name="look", agent=Agent(name="Looker", model=model))
        return Workflow(
            name="gated-look",
            steps=[Approval(name="ok", prompt="Look at it?"), look],
            storage=f"sqlite:///{database}",
        )

    paused = await build().arun("Describe it.", images=[PNG])
    assert paused.status is RunStatus.PAUSED
    assert openai_server.chat_requests == []
    with sqlite3.connect(database) as db:
        (record,) = db.execute("SELECT data FROM plait_runs").fetchone()
        payloads = db.execute("SELECT hash, data FROM plait_payloads").fetchall()
    assert b64(PNG) not in record and hashlib.sha256(PNG).hexdigest() in record  # referenced, not inline
    assert payloads == [(hashlib.sha256(PNG).hexdigest(), b64(PNG))]
    forget_blobs(PNG)  # a new workflow object, the image's bytes only in the storage
    done = await build().acontinue_run(paused.run_id, approve=True)
    assert done.status is RunStatus.COMPLETED
    assert openai_server.chat_requests[-1]["messages"][-1]["content"] == [
        {"type": "text", "text": "Describe it."},
        image_url(PNG),
    ]


async def test_a_cache_hit_and_a_replay_keep_the_media(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    flow = Workflow(
        name="cached-look",
        steps=[Step(name="look", agent=Agent(name="Looker", model=model), cache=True)],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    first = await flow.arun("Describe it.", images=[PNG])
    assert len(openai_server.chat_requests) == 1
    again = await flow.arun("Describe it.", images=[PNG])
    assert again.step_outputs[0].metadata == {"cache_hit": True}
    assert again.content == first.content and len(openai_server.chat_requests) == 1
    other = await flow.arun("Describe it.", images=[OTHER_PNG])  # another image: not the cached answer
    assert other.step_outputs[0].metadata in (None, {})
    assert openai_server.chat_requests[-1]["messages"][-1]["content"][1] == image_url(OTHER_PNG)
    assert len(openai_server.chat_requests) == 2
    # the replay answers the agent's call from the record: the same request, image included
    # (without the image it would diverge), and no live call
    uncached = Workflow(
        name="cached-look",
        steps=[Step(name="look", agent=Agent(name="Looker", model=model))],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    forget_blobs(OTHER_PNG)
    replayed = await uncached.areplay(other.run_id)
    assert replayed.content == other.content and replayed.replay_differences == []
    assert len(openai_server.chat_requests) == 2


async def test_a_queued_run_keeps_its_media(tmp_path: Path) -> None:
    received: list[Any] = []
    flow = Workflow(
        name="queued-look",
        steps=[Step(name="look", executor=lambda i: received.append(i.audio) or "heard")],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40
    queued = await flow.astart("x", queue=True, audio=[wav])
    forget_blobs(wav)  # the worker finds the bytes in the storage
    worker = Worker([flow], poll=0.02)
    task = asyncio.create_task(worker.run())
    record = await queued.await_end(timeout=30, poll=0.02)
    worker.stop()
    await task
    assert record.status == "COMPLETED"
    assert received == [[AudioPart(data=wav)]]


# -- VideoPart ---------------------------------------------------------------------------------


def test_video_parts_by_url_or_bytes() -> None:
    assert VideoPart(data=MP4).media_type == "video/mp4"
    assert VideoPart(data=b"\x1a\x45\xdf\xa3" + b"\x00" * 40).media_type == "video/webm"
    assert VideoPart(url="https://example.com/clip.mp4").media_type == "video/mp4"
    with pytest.raises(DefinitionError, match=r"VideoPart: media_type 'image/png' is not of this kind"):
        VideoPart(data=PNG)
    assert VideoPart(data=MP4).describe() == f"video (video/mp4, {len(MP4)} bytes)"


@pytest.mark.filterwarnings(
    r"ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated"
)
async def test_litellm_sends_a_video_as_a_file_part_gemini_takes(openai_server: OpenAIServer) -> None:
    from plait_litellm import LiteLLMModel

    async with LiteLLMModel(
        "openai/gpt-4o", base_url=openai_server.base_url, api_key="k", timeout=10
    ) as model:
        flow = Workflow(name="Watch", steps=[Step(name="watch", agent=Agent(name="Watcher", model=model))])
        await flow.arun("What happens?", videos=[MP4])
    inline = {
        "type": "file",
        "file": {"file_data": f"data:video/mp4;base64,{b64(MP4)}", "format": "video/mp4"},
    }
    text, sent = openai_server.chat_requests[-1]["messages"][-1]["content"]
    assert text == {"type": "text", "text": "What happens?"}
    # LiteLLM's OpenAI route keeps the bytes as a file (it drops ``format``, names the file itself)
    assert sent["type"] == "file" and sent["file"]["file_data"] == inline["file"]["file_data"]
    # what LiteLLM makes of plait's video parts for Gemini: inline bytes and a file URI, as video/mp4
    from litellm.llms.vertex_ai.gemini.transformation import gemini_convert_messages_with_history

    from plait.chat_format import content_params

    parts = content_params(
        [VideoPart(data=MP4), VideoPart(url="https://example.com/clip.mp4")], provider="litellm"
    )
    assert parts == [
        inline,
        {"type": "file", "file": {"file_id": "https://example.com/clip.mp4", "format": "video/mp4"}},
    ]
    (gemini,) = gemini_convert_messages_with_history(
        [{"role": "user", "content": parts}],  # type: ignore[list-item]
        model="gemini-2.5-flash",
        custom_llm_provider="gemini",
    )
    assert [p for p in gemini["parts"] if "text" not in p] == [  # LiteLLM adds a blank text part
        {"inline_data": {"data": b64(MP4), "mime_type": "video/mp4"}},
        {"file_data": {"mime_type": "video/mp4", "file_uri": "https://example.com/clip.mp4"}},
    ]


async def test_openai_and_anthropic_refuse_a_video_naming_the_model(
    openai_server: OpenAIServer, model: OpenAIModel
) -> None:
    from plait.errors import BadRequestError
    from plait_anthropic import AnthropicModel

    with pytest.raises(
        BadRequestError,
        match=r"OpenAIModel\('gpt-4o'\) \(provider 'openai'\) cannot take the video \(video/mp4, "
        r"\d+ bytes\) part of message 0 \(user\); it accepts audio, file, image, text parts",
    ):
        await Agent(name="Watcher", model=model).arun("What happens?", videos=[MP4])
    claude = AnthropicModel("claude-sonnet-4-5", base_url="http://127.0.0.1:9", api_key="k")
    flow = Workflow(name="Watch", steps=[Step(name="watch", agent=Agent(name="Watcher", model=claude))])
    with pytest.raises(
        Exception,
        match=r"AnthropicModel\('claude-sonnet-4-5'\) \(provider 'anthropic'\) cannot take the video "
        r"\(video/mp4, https://example.com/clip.mp4\) part .*; it accepts file, image, text parts",
    ):
        await flow.arun("What happens?", videos=["https://example.com/clip.mp4"])
    await claude.aclose()
    assert openai_server.chat_requests == []  # refused before any request


# -- a cached agent step still adds its turn to the conversation ---------------------------------------


async def test_a_cache_hit_adds_the_agent_s_turn_to_the_session(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    chat = Agent(name="Chat", model=model, history=3)
    flow = Workflow(
        name="chat",
        steps=[Step(name="answer", agent=chat, cache=True)],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    await flow.arun("Hello there.", session_id="a")
    assert len(openai_server.chat_requests) == 1
    hit = await flow.arun("Hello there.", session_id="b")  # the same first turn: the cached answer
    assert hit.step_outputs[0].metadata == {"cache_hit": True}
    assert len(openai_server.chat_requests) == 1
    history = await chat.aget_history("b", storage=await flow._ready_storage())
    assert [(m.role, m.content) for m in history] == [
        ("user", "Hello there."),
        ("assistant", "Echo: Hello there."),
    ]
    await flow.arun("And then?", session_id="b")  # the next request sends the reused turn
    assert openai_server.chat_requests[-1]["messages"] == [
        {"role": "user", "content": "Hello there."},
        {"role": "assistant", "content": "Echo: Hello there."},
        {"role": "user", "content": "And then?"},
    ]
    again = await flow.arun("Hello there.", session_id="b")  # a later turn: its history differs, no hit
    assert again.step_outputs[0].metadata in (None, {})
    assert len(openai_server.chat_requests) == 3


async def test_a_replay_of_a_run_whose_input_holds_parts(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    from plait import TextPart

    flow = Workflow(
        name="parts-in",
        steps=[Step(name="look", agent=Agent(name="Looker", model=model))],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    first = await flow.arun([TextPart("Describe it."), ImagePart(data=PNG)])
    forget_blobs(PNG)
    replayed = await flow.areplay(first.run_id)  # the recorded request again, image included
    assert replayed.content == first.content == "Echo: Describe it."
    assert replayed.replay_differences == [] and len(openai_server.chat_requests) == 1


async def test_a_step_s_image_survives_a_resume_and_reaches_the_agent(
    openai_server: OpenAIServer, model: OpenAIModel, tmp_path: Path
) -> None:
    database = tmp_path / "runs.db"
    made: list[str] = []

    def draw(step_input: StepInput) -> StepOutput:
        made.append("drawn")
        return StepOutput(content="Describe the drawing.", images=[ImagePart(data=OTHER_PNG)])

    def build() -> Workflow:
        return Workflow(
            name="draw-then-look",
            steps=[
                Step(name="draw", executor=draw),
                Approval(name="ok", prompt="Show it?"),
                Step(name="look", agent=Agent(name="Looker", model=model)),
            ],
            storage=f"sqlite:///{database}",
        )

    paused = await build().arun("x")
    with sqlite3.connect(database) as db:
        checkpoints = " ".join(row[0] for row in db.execute("SELECT data FROM plait_checkpoints"))
    assert hashlib.sha256(OTHER_PNG).hexdigest() in checkpoints and b64(OTHER_PNG) not in checkpoints
    forget_blobs(OTHER_PNG)
    done = await build().acontinue_run(paused.run_id, approve=True)
    assert done.status is RunStatus.COMPLETED and made == ["drawn"]  # restored, not drawn again
    assert done.step_outputs[0].images == [ImagePart(data=OTHER_PNG)]
    assert openai_server.chat_requests[-1]["messages"][-1]["content"] == [
        {"type": "text", "text": "Describe the drawing."},
        image_url(OTHER_PNG),
    ]
    # StepOutput.to_dict / from_dict keep the media (by digest)
    data = done.step_outputs[0].to_dict()
    assert b64(OTHER_PNG) not in str(data)
    assert StepOutput.from_dict(data).images == [ImagePart(data=OTHER_PNG)]


def test_print_response_takes_the_media(capsys: pytest.CaptureFixture[str]) -> None:
    looker = Agent(name="Looker", model="offline:demo", instructions="Describe the picture.")
    Workflow(name="Look", steps=[Step(name="look", agent=looker)]).print_response(
        "Describe it.", images=[PNG]
    )
    assert f"image (image/png, {len(PNG):,} bytes)" in capsys.readouterr().out


def test_a_team_step_s_leader_gets_the_media() -> None:
    from plait import Team, TextPart
    from plait.models import Message
    from plait.testing import FunctionModel

    seen: list[Any] = []

    def reply(messages: list[Message]) -> str:
        seen.append(messages[-1].content)
        return "ok"

    team = Team(name="T", members=[Agent(name="M", model=FunctionModel(reply))], model=FunctionModel(reply))
    assert Workflow(name="W", steps=[team]).run("look", images=[PNG]).content == "ok"
    assert seen == [[TextPart("look"), ImagePart(data=PNG)]]


def test_the_run_output_collects_the_media_as_agno_does() -> None:
    def make(step_input: StepInput) -> StepOutput:
        return StepOutput(content="made", images=[ImagePart(data=OTHER_PNG)], files=[FilePart(data=PDF)])

    seen: list[Any] = []
    inner = Workflow(name="inner", steps=[Step(name="make", executor=make)])
    after = Step(name="after", executor=lambda i: seen.append(i.media()) or "done")
    output = Workflow(name="outer", steps=[inner, after]).run("x", images=[PNG])
    assert output.images == [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)]  # given, then made
    assert output.files == [FilePart(data=PDF)] and output.audio is None
    # the nested workflow's step output carries what its steps made (not again what it was given)
    assert seen == [
        {"images": [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)], "files": [FilePart(data=PDF)]}
    ]
    data = output.to_dict()
    assert b64(OTHER_PNG) not in str(data)
    again = type(output).from_dict(data)
    assert again.images == output.images and again.files == output.files
    assert Workflow(name="plain", steps=[Step(name="s", executor=lambda i: "x")]).run("x").images is None


def test_agent_print_response_takes_media_as_agno_does(capsys: pytest.CaptureFixture[str]) -> None:
    from plait.models import Message
    from plait.testing import FunctionModel

    seen: list[Any] = []

    def reply(messages: list[Message]) -> str:
        seen.append(messages[-1].content)
        return "a red square"

    agent = Agent(name="Looker", model=FunctionModel(reply))
    agent.print_response("What is it?", images=[PNG])
    asyncio.run(agent.aprint_response("And now?", images=[PNG], stream=True))
    assert [[type(p).__name__ for p in content] for content in seen] == [["TextPart", "ImagePart"]] * 2
    assert capsys.readouterr().out.count("a red square") >= 2
    with pytest.raises(DefinitionError, match="images"):
        agent.print_response("x", images=[3])


def test_a_parallel_passes_its_branches_media_on_as_agno_does(tmp_path: Path) -> None:
    from plait import Parallel

    def draw(step_input: StepInput) -> StepOutput:
        return StepOutput(content="drawn", images=[ImagePart(data=OTHER_PNG)])

    def record(step_input: StepInput) -> StepOutput:
        return StepOutput(content="recorded", files=[FilePart(data=PDF)])

    seen: list[Any] = []
    flow = Workflow(
        name="fan",
        steps=[
            Parallel(Step(name="draw", executor=draw), Step(name="record", executor=record), name="both"),
            Step(name="after", executor=lambda i: seen.append(i.media()) or "done"),
        ],
        storage=f"sqlite:///{tmp_path / 'runs.db'}",
    )
    output = flow.run("x", images=[PNG])
    # the run's own first, then the branches' in branch order
    assert seen == [
        {"images": [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)], "files": [FilePart(data=PDF)]}
    ]
    assert output.step_outputs[0].images == [ImagePart(data=OTHER_PNG)]
    assert output.images == [ImagePart(data=PNG), ImagePart(data=OTHER_PNG)]
    # a fork after the Parallel restores it from its checkpoint, media and all
    forked = flow.fork(output.run_id, at="after")
    assert forked.status is RunStatus.COMPLETED
    assert seen[-1] == seen[0]
