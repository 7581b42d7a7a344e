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
_BATCH = 256
_ready: list[str] = []

#: one id as it is laid out: 32 hex digits (``d``) and four dashes, then the space that
#: separates it from the next one in a batch
_LAYOUT = "dddddddd-dddd-dddd-dddd-dddddddddddd "
_PLACES = [at for at, char in enumerate(_LAYOUT) if char == "d"]  # where digit 0, 1, ... goes
_TEMPLATE = _LAYOUT.replace("d", "0").encode()
#: byte 6 of an id: the version (4) in its high nibble; byte 8: the variant (10xx) in its top bits
_VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def new_id() -> str:
    """A random RFC 4122 version-4 UUID, as its usual 36-character string."""
    try:
        return _ready.pop()  # atomic: threads never get the same id
    except IndexError:
        _ready.extend(_make(_BATCH))
        return _ready.pop()


def _make(count: int) -> list[str]:
    """``count`` ids from one read, as ``str(uuid.UUID(bytes=...))`` formats each 16 bytes.

    Formatting ids one by one (five slices and an f-string each) cost 4-5x the rest of a
    one-step run's id handling; here each byte operation works on the whole batch at once
    (strided slices): the version and variant bits are set in every id's bytes, the hex
    digits are copied into the dashed layout digit by digit, and one split cuts the ids."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_VERSION)
    raw[8::16] = raw[8::16].translate(_VARIANT)
    digits = raw.hex().encode()
    width = len(_LAYOUT)
    text = bytearray(_TEMPLATE * count)
    for digit, at in enumerate(_PLACES):
        text[at::width] = digits[digit::32]
    return text.decode().split()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_ready.clear)
