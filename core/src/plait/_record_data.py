"""The data of recorded calls (plait._record): :class:`Recorded`, and the canonical JSON and
hash every payload is stored and matched by. Shared by the recorder and its storage side
(plait._record_store), which import it and not each other."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Recorded", "canonical", "fingerprint"]


@dataclass(slots=True)
class Recorded:
    """One recorded call: where it was made, its request and its response (JSON)."""

    kind: str  # "model" or "tool"
    step_id: str
    index: int
    name: str
    fingerprint: str
    request: Any
    response: Any
    attempt: int = 1
    #: the request's canonical JSON text when known (what is stored)
    request_text: str | None = None
    #: the hash of ``request_text`` when known (not computed twice on the write path)
    request_hash: str | None = None

    def to_line(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "step_id": self.step_id,
            "index": self.index,
            "attempt": self.attempt,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "request": self.request,
            "response": self.response,
        }

    @classmethod
    def from_line(cls, data: dict[str, Any]) -> Recorded:
        return cls(
            data["kind"],
            data.get("step_id", ""),
            int(data.get("index", 0)),
            data.get("name", ""),
            data["fingerprint"],
            data.get("request"),
            data.get("response"),
            int(data.get("attempt", 1)),
        )


#: built once: ``json.dumps`` with these options builds an encoder per call
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


#: a UTF-16 surrogate on its own: a str can hold one (JSON's ``"\ud800"`` decodes to one), UTF-8
#: cannot, so no database stores a text that has one as it is
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def canonical(value: Any) -> str:
    """A value's canonical JSON text (sorted keys, compact, UTF-8): what is hashed and stored.
    A lone surrogate is written as its ``\\uXXXX`` escape (JSON that reads back the same), so
    the text can be stored; a text without one is unchanged (its fingerprint too)."""
    text = _CANONICAL.encode(value)
    if not text.isascii() and LONE_SURROGATE.search(text):
        text = LONE_SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)
    return text


def fingerprint(text: str) -> str:
    """The SHA-256 of a payload's canonical JSON text."""
    import hashlib  # here: importing it costs ~2 ms, and only recorded runs need it

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
