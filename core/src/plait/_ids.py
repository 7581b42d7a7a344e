"""Run and session ids: random UUID4 strings, made cheaply (uuid.uuid4() costs more than
a short workflow step).

The randomness comes from ``os.urandom``, read for many ids at once: one read costs more
than a short run (a system call, microseconds in a virtual machine), and a top-level run
takes two ids. A forked child drops what its parent read, so the two never share an id.
"""

from __future__ import annotations

import os

__all__ = ["new_id"]

#: ids made per read of os.urandom
_BATCH = 64
_ready: list[str] = []


def new_id() -> str:
    """A random RFC 4122 version-4 UUID, as its usual 36-character string."""
    try:
        return _ready.pop()  # atomic: threads never get the same id
    except IndexError:
        _ready.extend(_make(_BATCH))
        return _ready.pop()


def _make(count: int) -> list[str]:
    """``count`` ids from one read: 32 hex digits each, with the version (4) and variant
    (10xx: 8, 9, a or b) digits set."""
    h = os.urandom(16 * count).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{'89ab'[int(h[i + 16], 16) & 3]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_ready.clear)
