"""Images, audio and files in messages (issue #20, item 3): the parts, their bad inputs, what
the local OpenAI- and Anthropic-protocol servers receive through the real SDKs (and through
LiteLLM), a kind a provider cannot take, conversation history with an image on SQLite, threads,
workflow steps and the offline model."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import threading
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from plait import Agent, AudioPart, FilePart, ImagePart, Step, TextPart, Workflow
from plait.errors import BadRequestError, DefinitionError
from plait.models import Message, Model, ModelRequest, ModelResponse
from plait.testing import FunctionModel, OfflineModel
from plait_anthropic import AnthropicModel
from plait_openai import OpenAIModel
from tests.servers.anthropic_server import AnthropicServer, Reply, anthropic_server
from tests.servers.openai_server import OpenAIServer, openai_server

__all__ = ["anthropic_server", "openai_server"]

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + b"\xab" * 300
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _wav() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x01" * 800)
    return buffer.getvalue()


WAV = _wav()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def openai_model(openai_server: OpenAIServer) -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel("gpt-4o", base_url=openai_server.base_url, api_key="k") as model:
        yield model


@pytest.fixture
async def claude(anthropic_server: AnthropicServer) -> AsyncIterator[AnthropicModel]:
    async with AnthropicModel("claude-sonnet-4-5", base_url=anthropic_server.base_url, api_key="k") as model:
        yield model


# -- the parts -------------------------------------------------------------------------------


def test_media_types_are_recognised_from_bytes_and_file_names(tmp_path: Path) -> None:
    assert ImagePart(data=PNG).media_type == "image/png"
    assert ImagePart(data=JPEG).media_type == "image/jpeg"
    assert AudioPart(data=WAV).media_type == "audio/wav"
    assert FilePart(data=PDF).media_type == "application/pdf"
    notes = tmp_path / "notes.txt"
    notes.write_text("zwölf\x00 items", encoding="utf-8")
    part = FilePart(path=notes)
    assert (part.media_type, part.filename, part.data) == ("text/plain", "notes.txt", notes.read_bytes())
    assert ImagePart(url="https://example.com/cat.webp").media_type == "image/webp"
    assert ImagePart(url=f"data:image/gif;base64,{b64(b'GIF89a')}").media_type == "image/gif"
    assert ImagePart(data=PNG) == ImagePart(data=bytearray(PNG))  # equal by content
    assert ImagePart(data=PNG).digest == hashlib.sha256(PNG).hexdigest()
    assert "bytes" in repr(ImagePart(data=PNG)) and "\\x89" not in repr(ImagePart(data=PNG))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: ImagePart(data=WAV),
            r"ImagePart: media_type 'audio/wav' is not of this kind; expected image/",
        ),
        (lambda: AudioPart(data=PNG, media_type="image/png"), r"expected audio/"),
        (lambda: ImagePart(data=b""), r"ImagePart: data is empty \(0 bytes\)"),
        (lambda: ImagePart(data="cat.png"), r"data must be bytes, got str \(a file's name goes in path="),  # type: ignore[arg-type]
        (lambda: ImagePart(), r"give exactly one of url=, data= \(bytes\) or path=, got none"),
        (lambda: ImagePart(url="https://x/a.png", data=PNG), r"got url=, data="),
        (lambda: ImagePart(data=b"\x01\x02\x03"), r"media_type= is needed"),
        (
            lambda: ImagePart(url="ftp://x/a.png"),
            r"url must be an http\(s\):// or data: URL, got 'ftp://x/a.png'",
        ),
        (lambda: FilePart(data=PDF, media_type="pdf"), r"media_type must be like 'image/png', got 'pdf'"),
        (lambda: TextPart(b"bytes"), r"TextPart: text must be a str, got bytes"),  # type: ignore[arg-type]
    ],
)
def test_bad_parts_are_clear_errors(make: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()


def test_a_path_that_does_not_exist_names_the_path_and_the_agent(tmp_path: Path) -> None:
    agent = Agent(name="Looker", model=FunctionModel(lambda messages: "never"))
    missing = str(tmp_path / "missing.png")
    with pytest.raises(DefinitionError, match=rf"ImagePart: path '{missing}' is not a file"):
        agent.run("describe", images=[missing])
    with pytest.raises(
        DefinitionError, match=r"Agent 'Looker' files=: expected FilePart, a URL, a path or bytes, got int"
    ):
        agent.run("describe", files=[42])


# -- agent.run(images=..., audio=..., files=...) -------------------------------------------------


def test_the_model_receives_the_input_and_the_parts_in_order() -> None:
    seen: list[Message] = []

    def reply(messages: list[Message]) -> str:
        seen.append(messages[-1])
        return "ok"

    agent = Agent(name="Looker", model=FunctionModel(reply))
    agent.run("describe", images=[PNG, "https://example.com/a.jpg"], audio=WAV, files=[FilePart(data=PDF)])
    [message] = seen
    assert message.text == "describe"
    assert message.content == [
        TextPart("describe"),
        ImagePart(data=PNG),
        ImagePart(url="https://example.com/a.jpg"),
        AudioPart(data=WAV),
        FilePart(data=PDF),
    ]
    # parts as the input itself, no keyword needed
    agent.run([TextPart("what is this?"), ImagePart(data=JPEG)])
    assert seen[-1].content == [TextPart("what is this?"), ImagePart(data=JPEG)]


def test_threads_each_send_their_own_image() -> None:
    def reply(messages: list[Message]) -> str:
        image = messages[-1].parts[1]
        assert isinstance(image, ImagePart) and image.data is not None
        return hashlib.sha256(image.data).hexdigest()

    agent = Agent(name="Looker", model=FunctionModel(reply))
    images = [PNG + bytes([n]) * 1000 for n in range(8)]
    results: dict[int, str] = {}

    def run(n: int) -> None:
        results[n] = agent.run(f"image {n}", images=[images[n]]).content

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: hashlib.sha256(images[n]).hexdigest() for n in range(8)}


class TextOnly(Model):
    provider = "textonly"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(Message("assistant", request.messages[-1].text))


def test_a_model_that_takes_no_images_says_so_before_any_call() -> None:
    agent = Agent(name="Reader", model=TextOnly("plain"))
    assert agent.run([TextPart("just text")]).content == "just text"
    with pytest.raises(BadRequestError) as caught:
        agent.run("describe", images=[PNG])
    assert str(caught.value) == (
        f"TextOnly('plain') (provider 'textonly') cannot take the image (image/png, {len(PNG):,} bytes) part "
        "of message 0 (user); it accepts text parts"
    )


# -- OpenAI Chat Completions ---------------------------------------------------------------


async def test_openai_receives_image_audio_and_file_parts(
    openai_server: OpenAIServer, openai_model: OpenAIModel
) -> None:
    agent = Agent(name="Looker", model=openai_model)
    result = await agent.arun(
        "Describe them.",
        images=[ImagePart(url="https://example.com/cat.png", detail="low"), PNG],
        audio=[WAV],
        files=[FilePart(data=PDF, filename="report.pdf")],
    )
    assert result.content == "Echo: Describe them."
    assert openai_server.chat_requests[-1]["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Describe them."},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
            {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
            {
                "type": "file",
                "file": {"file_data": f"data:application/pdf;base64,{b64(PDF)}", "filename": "report.pdf"},
            },
        ],
    }
    chunks = [e.content async for e in agent.arun("Again.", images=[JPEG], stream=True)]  # streamed too
    assert "".join(chunks) == "Echo: Again."
    image = openai_server.chat_requests[-1]["messages"][-1]["content"][1]
    assert image == {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(JPEG)}"}}


async def test_openai_refuses_audio_and_files_by_url_without_a_request(
    openai_server: OpenAIServer, openai_model: OpenAIModel
) -> None:
    agent = Agent(name="Looker", model=openai_model)
    with pytest.raises(
        BadRequestError, match=r"openai cannot send the audio \(audio/mpeg, https://x/a.mp3\) part: "
    ):
        await agent.arun("hear", audio=["https://x/a.mp3"])
    with pytest.raises(BadRequestError, match=r"in WAV or MP3 \(audio/wav, audio/mpeg\)"):
        await agent.arun("hear", audio=[AudioPart(data=b"OggS" + b"\0" * 40)])
    with pytest.raises(BadRequestError, match=r"a file as its bytes \(data= or path=\), not a URL"):
        await agent.arun("read", files=["https://x/report.pdf"])
    assert openai_server.chat_requests == []


# -- Anthropic Messages ------------------------------------------------------------------------


async def test_anthropic_receives_image_and_document_blocks(
    anthropic_server: AnthropicServer, claude: AnthropicModel
) -> None:
    anthropic_server.enqueue(Reply.text("A cat and a report."))
    agent = Agent(name="Looker", model=claude)
    result = await agent.arun(
        "Describe them.",
        images=[PNG, "https://example.com/cat.jpg"],
        files=[
            FilePart(data=PDF, filename="report.pdf"),
            "https://example.com/paper.pdf",
            FilePart(data="zwölf\x00".encode(), media_type="text/plain"),
        ],
    )
    assert result.content == "A cat and a report."
    assert anthropic_server.last_request.json["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe them."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)},
                    "title": "report.pdf",
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "zwölf\x00"},
                },
            ],
        }
    ]


async def test_anthropic_says_what_it_accepts(
    anthropic_server: AnthropicServer, claude: AnthropicModel
) -> None:
    agent = Agent(name="Looker", model=claude)
    with pytest.raises(
        BadRequestError,
        match=r"provider 'anthropic'\) cannot take the audio \(audio/wav, .* it accepts file, image, text parts",
    ):
        await agent.arun("hear", audio=[WAV])
    with pytest.raises(
        BadRequestError,
        match=r"Anthropic cannot take the image \(image/bmp, 40 bytes\) part: it accepts images in image/jpeg",
    ):
        await agent.arun("look", images=[ImagePart(data=b"BM" + b"\0" * 38, media_type="image/bmp")])
    with pytest.raises(BadRequestError, match=r"documents that are PDF \(application/pdf\) or plain text"):
        await agent.arun("read", files=[FilePart(data=b"PK\x03\x04", media_type="application/zip")])
    assert anthropic_server.requests == []


# -- LiteLLM: the OpenAI shape, which LiteLLM translates --------------------------------------


@pytest.mark.filterwarnings(
    r"ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated"
)
async def test_litellm_sends_openai_parts_to_both_protocols(
    openai_server: OpenAIServer, anthropic_server: AnthropicServer
) -> None:
    from plait_litellm import LiteLLMModel

    async with LiteLLMModel(
        "openai/gpt-4o", base_url=openai_server.base_url, api_key="k", timeout=10
    ) as model:
        await Agent(name="Looker", model=model).arun(
            "Describe.", images=[PNG], files=[FilePart(data=PDF, filename="r.pdf")]
        )
    assert openai_server.chat_requests[-1]["messages"][-1]["content"] == [
        {"type": "text", "text": "Describe."},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{b64(PDF)}", "filename": "r.pdf"},
        },
    ]
    anthropic_server.enqueue(Reply.text("A picture."))
    async with LiteLLMModel(
        "anthropic/claude-sonnet-4-5", base_url=anthropic_server.base_url, api_key="k", timeout=10
    ) as model:
        await Agent(name="Looker", model=model).arun("Describe.", images=[PNG])
    blocks = anthropic_server.last_request.json["messages"][-1]["content"]
    assert {"type": "text", "text": "Describe."} in blocks
    image = next(b for b in blocks if b["type"] == "image")
    assert image["source"] == {"type": "base64", "media_type": "image/png", "data": b64(PNG)}


# -- history, steps, the offline model ------------------------------------------------------------


async def test_an_image_in_the_history_is_sent_again_and_stored_once(
    openai_server: OpenAIServer, openai_model: OpenAIModel, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    agent = Agent(name="Chat", model=openai_model, history=2, storage=url)
    await agent.arun("What is in it?", images=[PNG], session_id="s")
    await agent.arun("And its colour?", session_id="s")
    first, second = openai_server.chat_requests
    assert second["messages"][0] == first["messages"][-1]  # the image, byte for byte
    assert second["messages"][-1] == {"role": "user", "content": "And its colour?"}
    history = await agent.aget_history("s")
    assert history[0].content == [TextPart("What is in it?"), ImagePart(data=PNG)]
    import sqlite3

    with sqlite3.connect(tmp_path / "chat.db") as db:
        rows = db.execute("SELECT data FROM plait_history").fetchall()
        payloads = db.execute("SELECT hash, data FROM plait_payloads").fetchall()
    assert all(b64(PNG) not in row[0] for row in rows)
    assert payloads == [(hashlib.sha256(PNG).hexdigest(), b64(PNG))]


def test_a_workflow_step_passes_parts_to_its_agent() -> None:
    seen: list[Any] = []

    def reply(messages: list[Message]) -> str:
        seen.append(messages[-1].content)
        return "seen"

    def attach(step_input: Any) -> list[Any]:
        return [TextPart(f"Look at {step_input.input}."), ImagePart(data=PNG)]

    flow = Workflow(
        name="Look",
        steps=[
            Step(name="attach", executor=attach),
            Step(name="look", agent=Agent(name="L", model=FunctionModel(reply))),
        ],
    )
    assert flow.run("the cat").content == "seen"
    assert seen == [[TextPart("Look at the cat."), ImagePart(data=PNG)]]
    direct = Workflow(
        name="Direct", steps=[Step(name="look", agent=Agent(name="L", model=FunctionModel(reply)))]
    )
    asyncio.run(direct.arun([TextPart("direct"), ImagePart(data=JPEG)]))  # parts as the workflow input
    assert seen[-1] == [TextPart("direct"), ImagePart(data=JPEG)]


def test_the_offline_model_names_what_it_was_given() -> None:
    agent = Agent(name="Describer", model=OfflineModel(delay=0), instructions="Describe the picture.")
    text = agent.run("Describe this photo of a harbour", images=[PNG], files=[FilePart(data=PDF)]).content
    assert (
        f"Attached: image (image/png, {len(PNG):,} bytes); file (application/pdf, {len(PDF)} bytes)." in text
    )


def test_events_report_parts_by_digest_not_bytes() -> None:
    image = ImagePart(data=PNG + b"\xff" * 5000)
    flow = Workflow(
        name="Look",
        steps=[Step(name="look", agent=Agent(name="L", model=FunctionModel(lambda messages: "seen")))],
    )
    events = list(flow.run([TextPart("in"), image], stream=True, stream_events=True))
    started = events[0]
    reported = {"kind": "image", "media_type": "image/png", "blob": image.digest, "size": len(PNG) + 5000}
    assert started.to_dict()["input"] == [{"kind": "text", "text": "in"}, reported]
    assert json.loads(started.to_json()) == started.to_dict()
    assert b64(image.data or b"") not in "".join(e.to_json() for e in events)


async def test_stored_bytes_that_are_gone_or_altered_are_clear_errors(
    openai_server: OpenAIServer, openai_model: OpenAIModel, tmp_path: Path
) -> None:
    import sqlite3

    from plait import _blobs
    from plait.storage import StorageError

    database = tmp_path / "chat.db"
    agent = Agent(name="Chat", model=openai_model, history=2, storage=f"sqlite:///{database}")
    await agent.arun("What is in it?", images=[PNG], session_id="s")
    digest = hashlib.sha256(PNG).hexdigest()

    def forget() -> None:  # as a new process would start: nothing of the image in memory
        _blobs._cache.pop(digest, None)
        _blobs._written.clear()

    forget()
    with sqlite3.connect(database) as db:
        db.execute("UPDATE plait_payloads SET data = ? WHERE hash = ?", (b64(PNG[:-1] + b"?"), digest))
    with pytest.raises(StorageError, match=f"the stored bytes of sha256 {digest} do not have that digest"):
        await agent.aget_history("s")
    forget()
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM plait_payloads WHERE hash = ?", (digest,))
    with pytest.raises(StorageError, match=rf"\(sha256 {digest}\) are not in the storage"):
        await agent.aget_history("s")
