"""Cassettes (:func:`plait.testing.cassette`): the model and tool calls of every run under a
``with`` block recorded to a JSON-lines file, or answered from it."""

from __future__ import annotations

import contextvars
import json
import os
import threading
from typing import Any

from plait._record import CASSETTE, Recorder
from plait._record_data import Recorded, canonical
from plait.errors import DefinitionError

__all__ = ["Cassette"]


class Cassette:
    """:func:`plait.testing.cassette`: records the model and tool calls of every workflow and
    agent run under it to a JSON-lines file, or answers them from it (no network)."""

    MODES = ("once", "replay", "record")

    def __init__(self, path: Any, mode: str = "once") -> None:
        if mode not in self.MODES:
            raise DefinitionError(f"cassette: mode must be 'once', 'replay' or 'record', got {mode!r}")
        self.path = os.fspath(path)
        if mode == "once":
            mode = "replay" if os.path.exists(self.path) else "record"
        elif mode == "replay" and not os.path.exists(self.path):
            raise DefinitionError(
                f"cassette {self.path!r} does not exist: record it first (mode='once' or 'record')"
            )
        #: what this cassette does: "replay" or "record" ("once" resolved)
        self.mode = mode
        self._file_lock = threading.Lock()
        self._tokens: list[contextvars.Token[Recorder | None]] = []
        self.recorder: Recorder | None = None

    def _load(self) -> list[Recorded]:
        items: list[Recorded] = []
        with open(self.path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if not line.strip():
                    continue
                try:
                    items.append(Recorded.from_line(json.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise DefinitionError(
                        f"cassette {self.path!r} line {number}: not a recorded call ({exc}); record it again "
                        "with mode='record'"
                    ) from None
        return items

    async def _write(self, items: list[Recorded]) -> None:
        lines = "".join(canonical(item.to_line()) + "\n" for item in items)
        with self._file_lock, open(self.path, "a", encoding="utf-8") as file:
            file.write(lines)

    def _start(self) -> Cassette:
        if self.mode == "replay":
            recorder = Recorder(source=self._load(), strict=True, origin=f"cassette {self.path!r}")
        else:
            directory = os.path.dirname(self.path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            open(self.path, "w", encoding="utf-8").close()  # a new recording replaces the old one
            recorder = Recorder(sink=self._write, origin=f"cassette {self.path!r}")
        self.recorder = recorder
        self._tokens.append(CASSETTE.set(recorder))
        return self

    def _stop(self) -> None:
        CASSETTE.reset(self._tokens.pop())

    @property
    def replayed(self) -> int:
        """How many calls were answered from the cassette."""
        return 0 if self.recorder is None else self.recorder.replayed

    @property
    def live(self) -> int:
        """How many calls were made for real (and recorded)."""
        return 0 if self.recorder is None else self.recorder.live

    def __enter__(self) -> Cassette:
        return self._start()

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    async def __aenter__(self) -> Cassette:
        return self._start()

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop()

    def __repr__(self) -> str:
        return f"cassette({self.path!r}, mode={self.mode!r})"
