"""Run and session ids are RFC 4122 version-4 UUIDs in their usual form (plait._ids)."""

from __future__ import annotations

import uuid

from plait._ids import _make, new_id


def test_ids_are_uuid4_strings() -> None:
    ids = [new_id() for _ in range(600)]  # more than one batch
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # 36 characters, lower-case hex, dashes where uuid puts them
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_batch_is_the_count_asked_for() -> None:
    assert len(_make(1)) == 1
    assert len(_make(7)) == 7
