"""The ``offline:`` model: readable, role-appropriate, deterministic, streamed, no network."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from plait import Agent
from plait.models import ModelRequest, TextDelta, get_model
from plait.testing import OfflineModel


def reply(instructions: str, text: str, **kwargs: object) -> str:
    agent = Agent(name="agent", model=OfflineModel(delay=0), instructions=instructions, **kwargs)  # type: ignore[arg-type]
    return str(agent.run(text).content)


def test_offline_demo_resolves_by_name() -> None:
    model = get_model("offline:demo")
    assert isinstance(model, OfflineModel)
    assert (model.provider, model.model) == ("offline", "demo")


@pytest.mark.parametrize(
    ("instructions", "expected"),
    [
        ("Research the topic.", "Key findings:"),
        ("Write a polished article.", "patient work"),
        ("Edit the article for clarity.", "I tightened the draft"),
        ("Analyse the market.", "**Verdict.**"),
        ("List the claims that need a source.", "Claims that need a source:"),
        ("Be helpful.", "Here is a short answer"),
    ],
)
def test_reply_suits_the_role(instructions: str, expected: str) -> None:
    text = reply(instructions, "Tell me about the history of artificial intelligence")
    assert text.startswith("### The history of artificial intelligence\n")
    assert expected in text or (expected == "patient work" and "careful" in text)


def test_reply_is_deterministic_and_follows_the_input() -> None:
    a = reply("Write a polished article.", "The history of artificial intelligence")
    assert a == reply("Write a polished article.", "The history of artificial intelligence")
    b = reply("Write a polished article.", "Coffee roasting at home, step by step")
    assert b.startswith("### Coffee roasting at home, step by step\n") and a != b


def test_structured_output_gets_a_matching_object() -> None:
    class Verdict(BaseModel):
        label: str
        score: int

    agent = Agent(name="judge", model=OfflineModel(delay=0), instructions="Judge.", output_schema=Verdict)
    content = agent.run("anything").content
    assert isinstance(content, Verdict) and content.score == 1


def test_streams_word_by_word_with_the_configured_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_OFFLINE_DELAY", "0.5")
    assert OfflineModel().delay == 0.5
    monkeypatch.setenv("PLAIT_OFFLINE_DELAY", "0")
    model = get_model("offline:demo")
    assert model.delay == 0  # type: ignore[attr-defined]
    from plait.models import Message

    async def deltas() -> list[str]:
        request = ModelRequest(messages=[Message("user", "Research the history of tea")])
        return [e.text async for e in model.stream(request) if isinstance(e, TextDelta)]

    chunks = asyncio.run(asyncio.wait_for(deltas(), 10))
    assert len(chunks) > 10 and "".join(chunks).startswith("### The history of tea")


def test_an_announcement_reads_like_one() -> None:
    text = reply("Write a short announcement.", "plait 1.0 is out")
    assert text.startswith("### Plait 1.0 is out\n\nWe are glad to share the news: plait 1.0 is out.")


def test_a_short_topic_survives_the_next_agent() -> None:
    """The writer finds the topic in the researcher's heading, however short it is."""
    research = reply("Research the topic.", "history of AI")
    assert research.startswith("### History of AI\n")
    article = reply("Write a polished article.", f"Summary of research:\n{research}")
    assert article.startswith("### History of AI\n")
