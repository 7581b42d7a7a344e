"""The bytes of images, audio and files, stored once by their SHA-256 and referenced.

Stored content (checkpoints, the step cache, conversation history) and recorded model
requests hold a media part as JSON with its digest (``{"kind": "image", "blob": <sha256>,
...}``, :func:`plait._parts.part_json`), never its bytes: a 2 MB image sent on every turn of
a tool loop, or kept in every checkpoint after the step that received it, is stored once.

The bytes go to the storage's content-addressed payloads (``Storage.save_calls([],
{digest: base64})``, the table recorded calls use), keyed by the digest of the bytes. In
this process they are kept in a bounded cache (most recently used first), so encoding and
decoding, which are synchronous, find them: :func:`save_blobs` writes the ones a value
refers to before that value is stored, :func:`load_blobs` reads the ones it lacks before a
stored value is decoded.
"""

from __future__ import annotations

import base64
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait._parts import _MediaPart
    from plait.storage import Storage

__all__ = ["blob_refs", "load_blobs", "recall", "remember", "save_blobs"]

#: bytes kept in this process (beyond this, the least recently used are dropped: they are
#: read back from storage when needed)
MAX_CACHED = 256 * 1024 * 1024

_cache: OrderedDict[str, bytes] = OrderedDict()
_cached = 0
_lock = threading.Lock()
#: the digests already written to each storage object (each is written once per process)
_written: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _keep(digest: str, data: bytes) -> None:
    global _cached
    with _lock:
        if digest in _cache:
            _cache.move_to_end(digest)
            return
        _cache[digest] = data
        _cached += len(data)
        while _cached > MAX_CACHED and len(_cache) > 1:
            _, dropped = _cache.popitem(last=False)
            _cached -= len(dropped)


def remember(part: _MediaPart) -> str:
    """Keep ``part``'s bytes by digest (for :func:`save_blobs`); its digest."""
    digest = part.digest
    assert digest is not None and part.data is not None
    _keep(digest, part.data)
    return digest


def recall(digest: str, where: str) -> bytes:
    """The bytes stored as ``digest``: in this process's cache, read by :func:`load_blobs`."""
    with _lock:
        data = _cache.get(digest)
        if data is not None:
            _cache.move_to_end(digest)
            return data
    from plait.storage import StorageError

    raise StorageError(
        f"{where}: the bytes of a stored image, audio or file part (sha256 {digest}) are not in "
        "the storage: they were never saved there, or were deleted"
    )


def blob_refs(value: Any) -> Iterator[str]:
    """The digests a JSON value refers to (parts stored by :func:`plait._parts.part_json`)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            blob = item.get("blob")
            if isinstance(blob, str) and "kind" in item:
                yield blob
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def _anything_cached() -> bool:
    return bool(_cache)


async def save_blobs(storage: Storage, *values: Any) -> None:
    """Write the bytes the JSON ``values`` refer to that ``storage`` does not have from here."""
    if not _anything_cached():  # no part was ever stored from this process: nothing to walk
        return
    payloads = blob_payloads(storage, *values)
    if payloads:
        await storage.save_calls([], payloads)


def blob_payloads(storage: Any, *values: Any) -> dict[str, str]:
    """The payloads (digest: base64) of the bytes ``values`` refer to, not yet written to
    ``storage`` from this process (they count as written from now: the caller writes them)."""
    if not _anything_cached():
        return {}
    done = _written_to(storage)
    payloads: dict[str, str] = {}
    for digest in {d for value in values for d in blob_refs(value)} - done:
        with _lock:
            data = _cache.get(digest)
        if data is not None:
            payloads[digest] = base64.b64encode(data).decode("ascii")
    done.update(payloads)
    return payloads


def _written_to(storage: Any) -> set[str]:
    try:
        return _written.setdefault(storage, set())
    except TypeError:  # a storage that cannot be weakly referenced: write every time
        return set()


async def load_blobs(storage: Storage, *values: Any) -> None:
    """Read the bytes the stored JSON ``values`` refer to that this process does not hold."""
    with _lock:
        missing = sorted({d for value in values for d in blob_refs(value)} - _cache.keys())
    if not missing:
        return
    found = await storage.load_payloads(missing)
    import hashlib

    from plait.storage import StorageError

    for digest, text in found.items():
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError as exc:
            raise StorageError(
                f"{storage!r}: the stored bytes of sha256 {digest} are not base64: {exc}"
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StorageError(
                f"{storage!r}: the stored bytes of sha256 {digest} do not have that digest (altered)"
            )
        _keep(digest, data)
    _written_to(storage).update(found)
