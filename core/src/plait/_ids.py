"""Run and session ids: random UUID4 strings, made cheaply (uuid.uuid4() costs more than
a short workflow step)."""

from __future__ import annotations

import os

__all__ = ["new_id"]


def new_id() -> str:
    """A random RFC 4122 version-4 UUID, as its usual 36-character string."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
