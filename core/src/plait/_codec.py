"""Content as tagged JSON, so a resumed run or a cache hit gets back what the step produced.

Plain JSON (str, numbers, bools, None, lists, str-keyed dicts) is stored as it
is. Other common types are stored as ``{"$plait": tag, "v": ...}``: tuple, set,
frozenset, bytes, datetime, date, time, timedelta, Decimal, UUID, dicts with
non-str keys, a Parallel's :class:`~plait.ParallelContent` (its branches and
which of them failed). Pydantic models, dataclasses and enums are stored with their class
name, and rebuilt only from a class this process already holds: one a step
of a workflow built in this process declares (its function's annotations and the
field types of those classes, an agent's ``output_schema``), one it produced
itself (a cache hit or resume in the same process), or one named with
:func:`allow_content_type`. A class name in stored data never causes an import,
so stored data cannot run code that the workflow does not already use. Nothing
is pickled.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import enum
import math
import sys
import typing
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from plait._io import CODEC, ParallelContent
from plait._public import publish as _publish
from plait.errors import PlaitError

__all__ = ["allow_content_type", "class_key", "declared_types", "decode", "encode"]


def _is_model_class(cls: type) -> bool:
    """A pydantic model class, found without importing pydantic: where pydantic was never
    imported, nothing can be one (this keeps ``import plait`` and plain steps light)."""
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)


def _storage_error(message: str) -> PlaitError:
    from plait.storage import StorageError

    return StorageError(message)


TAG = "$plait"

#: classes content may be rebuilt into, by "module:qualname"
_allowed: dict[str, type] = {}


def class_key(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def allow_content_type(*classes: type) -> None:
    """Let stored content of these classes (pydantic models, dataclasses, enums) be rebuilt."""
    for cls in classes:
        _allowed[class_key(cls)] = cls


def _rebuildable(cls: type) -> bool:
    return _is_model_class(cls) or issubclass(cls, enum.Enum) or dataclasses.is_dataclass(cls)


def declared_types(annotations: Iterable[Any]) -> list[type]:
    """The model, dataclass and enum classes named anywhere in these annotations."""
    found: list[type] = []
    pending = list(annotations)
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, type) and _rebuildable(item):
            found.append(item)
            if _is_model_class(item):  # the classes of its fields may be stored inside it
                pending.extend(field.annotation for field in getattr(item, "model_fields", {}).values())
            elif dataclasses.is_dataclass(item):
                with contextlib.suppress(Exception):
                    pending.extend(typing.get_type_hints(item).values())
        pending.extend(typing.get_args(item))
    return found


def encode(value: Any, what: str) -> Any:
    """``value`` as tagged JSON, or a StorageError naming ``what`` and the type that cannot be stored."""
    if isinstance(value, enum.Enum):  # before str and int: a StrEnum or IntEnum member is one too
        cls = type(value)
        _allowed.setdefault(class_key(cls), cls)
        return {TAG: "enum", "cls": class_key(cls), "v": encode(value.value, what)}
    if value is None or isinstance(value, (str, bool)):
        return str(value) if isinstance(value, str) else value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {TAG: "float", "v": repr(value)}
    if isinstance(value, list):
        return [encode(item, what) for item in value]
    if isinstance(value, dict):
        if isinstance(value, ParallelContent):
            return {
                TAG: "parallel",
                "v": encode(dict(value), what),
                "failed": encode(value.failures, what),
            }
        if TAG not in value and all(type(key) is str for key in value):
            return {key: encode(item, what) for key, item in value.items()}
        return {TAG: "dict", "v": [[encode(k, what), encode(v, what)] for k, v in value.items()]}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {TAG: "tuple", "v": [encode(item, what) for item in value]}
    if isinstance(value, frozenset):
        return {TAG: "frozenset", "v": [encode(item, what) for item in value]}
    if isinstance(value, set):
        return {TAG: "set", "v": [encode(item, what) for item in value]}
    if isinstance(value, (bytes, bytearray)):
        return {TAG: "bytes", "v": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return {TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.time):
        return {TAG: "time", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {TAG: "decimal", "v": str(value)}
    uuid = sys.modules.get("uuid")  # not imported: no value can be a UUID (it costs 2 ms)
    if uuid is not None and isinstance(value, uuid.UUID):
        return {TAG: "uuid", "v": str(value)}
    parts = sys.modules.get("plait._parts")  # not imported: no value can be a part
    if parts is not None and isinstance(value, parts.PART_TYPES):
        return {TAG: "part", "v": parts.part_json(value)}  # bytes by digest (plait._blobs)
    cls = type(value)
    if _is_model_class(type(value)):
        _allowed.setdefault(class_key(cls), cls)
        fields = {name: getattr(value, name) for name in type(value).model_fields}
        fields.update(value.model_extra or {})
        return {TAG: "model", "cls": class_key(cls), "v": encode(fields, what)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        _allowed.setdefault(class_key(cls), cls)
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return {TAG: "dataclass", "cls": class_key(cls), "v": encode(fields, what)}
    raise _storage_error(
        f"{what} cannot be stored as JSON: a {cls.__module__}.{cls.__qualname__} ({value!r:.80}) would not come back "
        "as itself; return str, numbers, bools, None, lists, dicts, tuples, sets, bytes, datetimes, "
        "Decimal, UUID, enums, pydantic models or dataclasses"
    )


def decode(data: Any, what: str, declared: Iterable[type] = ()) -> Any:
    """The value :func:`encode` stored; classes only from ``declared`` or the allowed ones."""
    classes = {class_key(cls): cls for cls in declared}
    return _decode(data, what, classes)


def _decode(data: Any, what: str, classes: dict[str, type]) -> Any:
    if isinstance(data, list):
        return [_decode(item, what, classes) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    if tag is None:
        return {key: _decode(item, what, classes) for key, item in data.items()}
    raw: Any = data.get("v")
    if tag == "float":
        return float(raw)
    if tag == "dict":
        return {_decode(k, what, classes): _decode(v, what, classes) for k, v in raw}
    if tag == "parallel":
        return ParallelContent(_decode(raw, what, classes), _decode(data.get("failed"), what, classes))
    if tag == "tuple":
        return tuple(_decode(item, what, classes) for item in raw)
    if tag == "set":
        return {_decode(item, what, classes) for item in raw}
    if tag == "frozenset":
        return frozenset(_decode(item, what, classes) for item in raw)
    if tag == "bytes":
        return base64.b64decode(raw)
    if tag == "datetime":
        return dt.datetime.fromisoformat(raw)
    if tag == "date":
        return dt.date.fromisoformat(raw)
    if tag == "time":
        return dt.time.fromisoformat(raw)
    if tag == "timedelta":
        return dt.timedelta(days=raw[0], seconds=raw[1], microseconds=raw[2])
    if tag == "decimal":
        return Decimal(raw)
    if tag == "uuid":
        import uuid

        return uuid.UUID(raw)
    if tag == "part":
        from plait._parts import part_from_json

        return part_from_json(raw, what)
    if tag in ("enum", "model", "dataclass"):
        name = data.get("cls")
        cls = classes.get(name) or _allowed.get(name)  # type: ignore[arg-type]
        if cls is None:
            raise _storage_error(
                f"{what} holds a {name}, which this process may not rebuild (a class named in stored "
                "data is never imported): declare it in the step's return annotation or call "
                f"plait.allow_content_type({str(name).rpartition(':')[2]})"
            )
        value = _decode(raw, what, classes)
        if tag == "enum":
            return cls(value)
        if tag == "model":
            # built from what was stored, not validated again: the model validated it when the step made it
            return cls.model_construct(**value)  # type: ignore[attr-defined]
        return cls(**value)
    if tag == "shared":
        raise _storage_error(
            f"{what} holds a reference to a session-state value stored once for its run "
            f"({data.get('key')}): read checkpoints with plait.storage.read_checkpoints(storage, run_id), "
            "which resolves it, not with storage.load_checkpoints"
        )
    raise _storage_error(f"{what} holds an unknown tag {tag!r}; was it stored by a newer plait?")


# the data classes of plait._io serialize their content through these (see plait._io.CODEC)
CODEC.encode = encode
CODEC.decode = decode


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
