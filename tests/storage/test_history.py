"""The conversation-history methods every backend implements (schema version 4)."""

from __future__ import annotations

import asyncio

from plait.storage import HistoryRecord, Storage


def _turn(n: int, session: str = "s", agent: str = "A") -> HistoryRecord:
    return HistoryRecord(session_id=session, agent_id=agent, run_id=f"r{n}", messages=[{"n": n}])


async def test_append_load_bounded_and_clear(storage: Storage) -> None:
    await asyncio.gather(*(storage.append_history(_turn(n)) for n in range(1, 6)))  # concurrent appends
    await storage.append_history(_turn(9, agent="B"))  # another agent of the same session
    await storage.append_history(_turn(8, session="s:A"))  # ids that could be confused in a key
    everything = await storage.load_history("s", "A")
    assert sorted(r.run_id for r in everything) == ["r1", "r2", "r3", "r4", "r5"]  # none lost
    last = await storage.load_history("s", "A", limit=2)
    assert [r.run_id for r in last] == [r.run_id for r in everything[-2:]]  # oldest first
    assert await storage.load_history("s", "A", limit=0) == []
    assert [r.messages for r in await storage.load_history("s", "B")] == [[{"n": 9}]]
    await storage.clear_history("s", "A")
    assert await storage.load_history("s", "A") == []
    assert len(await storage.load_history("s", "B")) == 1  # only that agent's conversation went
    assert len(await storage.load_history("s:A", "A")) == 1
