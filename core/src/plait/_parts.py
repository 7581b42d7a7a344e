"""Content parts: a message's text, images, audio and files, in one provider-neutral form.

``Message.content`` is a string, or a list of parts: :class:`TextPart`, :class:`ImagePart`,
:class:`AudioPart`, :class:`VideoPart` and :class:`FilePart` (a document: a PDF, a text file).
A media part holds either a ``url`` or its bytes (``data=``, or ``path=`` to read a file), with
a ``media_type`` (``image/png``, ``audio/wav``, ``video/mp4``, ``application/pdf``) given or
recognised from the bytes or the file name. Providers map the parts to their wire format (:mod:`plait.chat_format` for the
OpenAI shape) and raise a clear error for a kind they cannot send.

Stored content and recorded requests carry a part's bytes once, by their SHA-256
(:mod:`plait._blobs`), never inline.
"""

from __future__ import annotations

import base64
import dataclasses
import mimetypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from plait.errors import DefinitionError

__all__ = [
    "ALL_KINDS",
    "PART_TYPES",
    "AudioPart",
    "FilePart",
    "ImagePart",
    "Part",
    "TextPart",
    "VideoPart",
    "content_text",
    "has_media",
    "input_parts",
    "message_parts",
    "part_from_json",
    "part_json",
    "parts_text",
    "run_media",
    "without_bytes",
]

#: the leading bytes of the formats most often sent, for bytes given without a media type
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"OggS", "audio/ogg"),
    (b"fLaC", "audio/flac"),
    (b"\x1a\x45\xdf\xa3", "video/webm"),
)


def _sniff(data: bytes) -> str | None:
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":  # ISO base media: MP4, QuickTime
        return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"
    return None


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text among a message's other parts."""

    text: str
    kind: ClassVar[str] = "text"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise DefinitionError(f"TextPart: text must be a str, got {type(self.text).__name__}")

    def describe(self) -> str:
        return f"text ({len(self.text):,} characters)"


@dataclass(frozen=True, slots=True, repr=False)
class _MediaPart:
    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None
    path: str | os.PathLike[str] | None = field(default=None, compare=False)
    #: the SHA-256 of ``data`` (hex), computed once when asked
    _digest: list[str] = field(default_factory=list, init=False, compare=False)

    kind: ClassVar[str] = "media"
    #: the media types this kind takes: their prefixes (``image/``), or None for any
    accepts: ClassVar[tuple[str, ...] | None] = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        given = [k for k in ("url", "data", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise DefinitionError(
                f"{name}: give exactly one of url=, data= (bytes) or path=, got "
                + (", ".join(f"{k}=" for k in given) if given else "none")
            )
        data, media_type = self.data, self.media_type
        if self.path is not None:
            path = Path(self.path)
            if not path.is_file():
                raise DefinitionError(f"{name}: path {str(path)!r} is not a file (it does not exist)")
            data = path.read_bytes()
            media_type = media_type or mimetypes.guess_type(path.name)[0]
            object.__setattr__(self, "data", data)
        if self.url is not None:
            if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://", "data:")):
                raise DefinitionError(f"{name}: url must be an http(s):// or data: URL, got {self.url!r}")
            media_type = media_type or _data_url_type(self.url) or mimetypes.guess_type(self.url)[0]
        if data is not None:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise DefinitionError(
                    f"{name}: data must be bytes, got {type(data).__name__} "
                    "(a file's name goes in path=, a web address in url=)"
                )
            data = bytes(data)
            if not data:
                raise DefinitionError(f"{name}: data is empty (0 bytes)")
            object.__setattr__(self, "data", data)
            media_type = media_type or _sniff(data)
        if media_type is None and data is not None:
            raise DefinitionError(f"{name}: media_type= is needed (its bytes are of no format plait knows)")
        if media_type is not None:
            if not isinstance(media_type, str) or "/" not in media_type:
                raise DefinitionError(f"{name}: media_type must be like 'image/png', got {media_type!r}")
            media_type = media_type.lower()
            if self.accepts is not None and not media_type.startswith(self.accepts):
                raise DefinitionError(
                    f"{name}: media_type {media_type!r} is not of this kind; expected "
                    + " or ".join(f"{a}..." for a in self.accepts)
                )
        object.__setattr__(self, "media_type", media_type)

    @property
    def digest(self) -> str | None:
        """The SHA-256 of the bytes, hex (None for a URL part): how stores refer to them."""
        if self.data is None:
            return None
        if not self._digest:
            import hashlib

            self._digest.append(hashlib.sha256(self.data).hexdigest())
        return self._digest[0]

    def base64(self) -> str:
        """The bytes as base64 text ("" for a URL part)."""
        return "" if self.data is None else base64.b64encode(self.data).decode("ascii")

    def data_url(self) -> str:
        """The part as a URL: its own, or a ``data:`` URL of its bytes."""
        if self.url is not None:
            return self.url
        return f"data:{self.media_type};base64,{self.base64()}"

    def describe(self) -> str:
        """A short description for errors and text: kind, media type, where or how big."""
        where = self.url if self.url is not None and not self.url.startswith("data:") else None
        size = f"{len(self.data):,} bytes" if self.data is not None else None
        return f"{self.kind} ({self.media_type or 'unknown type'}, {where or size or 'data URL'})"

    def __repr__(self) -> str:
        source = f"url={self.url[:80]!r}" if self.url is not None else f"data=<{len(self.data or b'')} bytes>"
        return f"{type(self).__name__}({source}, media_type={self.media_type!r})"


def _data_url_type(url: str) -> str | None:
    if url.startswith("data:") and ";" in url:
        return url[5 : url.index(";")] or None
    return None


@dataclass(frozen=True, slots=True, repr=False)
class ImagePart(_MediaPart):
    """An image, by URL or bytes: ``ImagePart(url="https://...")``, ``ImagePart(data=png)``,
    ``ImagePart(path="photo.jpg")``. ``detail`` is OpenAI's ``"low"``/``"high"``/``"auto"``."""

    detail: str | None = None
    kind: ClassVar[str] = "image"
    accepts: ClassVar[tuple[str, ...] | None] = ("image/",)


@dataclass(frozen=True, slots=True, repr=False)
class AudioPart(_MediaPart):
    """A sound recording (``audio/wav``, ``audio/mpeg``...), by bytes or URL."""

    kind: ClassVar[str] = "audio"
    accepts: ClassVar[tuple[str, ...] | None] = ("audio/",)


@dataclass(frozen=True, slots=True, repr=False)
class VideoPart(_MediaPart):
    """A video (``video/mp4``, ``video/webm``...), by URL or bytes: ``VideoPart(path="clip.mp4")``,
    ``VideoPart(url="https://...", media_type="video/mp4")``. Providers that take video (Gemini,
    through LiteLLM) receive it; the others refuse it before any request, naming the model."""

    kind: ClassVar[str] = "video"
    accepts: ClassVar[tuple[str, ...] | None] = ("video/",)


@dataclass(frozen=True, slots=True, repr=False)
class FilePart(_MediaPart):
    """A document (a PDF, a text file), by bytes or URL; ``filename`` is sent where the
    provider takes one (a path's name when not given)."""

    filename: str | None = None
    kind: ClassVar[str] = "file"

    def __post_init__(self) -> None:
        _MediaPart.__post_init__(self)
        if self.filename is None and self.path is not None:
            object.__setattr__(self, "filename", Path(self.path).name)


Part = TextPart | ImagePart | AudioPart | VideoPart | FilePart
#: every kind of part
ALL_KINDS = frozenset({"text", "image", "audio", "video", "file"})
PART_TYPES = (TextPart, ImagePart, AudioPart, VideoPart, FilePart)
_BY_KIND: dict[str, type[ImagePart | AudioPart | VideoPart | FilePart]] = {
    "image": ImagePart,
    "audio": AudioPart,
    "video": VideoPart,
    "file": FilePart,
}


def content_text(content: str | Sequence[Part] | None) -> str:
    """The text of a message's content: the string, or its text parts one per line."""
    if content is None or isinstance(content, str):
        return content or ""
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


def parts_text(value: Any) -> str:
    """Parts as text: their text, and a line naming each media part (``[image: image/png,
    2,048 bytes]``), for what reads content as text (a team's brief, a span)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    lines = []
    for item in items:
        if isinstance(item, TextPart):
            lines.append(item.text)
        elif isinstance(item, _MediaPart):
            lines.append(f"[{item.describe()}]")
        else:
            from plait._io import format_content

            lines.append(format_content(item))
    return "\n".join(lines)


def has_media(value: Any) -> bool:
    """A part, or a list or tuple with one: content an agent sends as parts."""
    if isinstance(value, PART_TYPES):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, PART_TYPES) for v in value)


def _coerce(item: Any, cls: type[_MediaPart], where: str) -> _MediaPart:
    if isinstance(item, cls):
        return item
    if isinstance(item, _MediaPart):  # a part of another kind: never turned into this one
        option = next((o for o, c in MEDIA_OPTIONS if isinstance(item, c)), "files")
        raise DefinitionError(
            f"{where}: expected {cls.__name__}, a URL, a path or bytes, got {type(item).__name__} "
            f"(it goes in {option}=)"
        )
    if isinstance(item, str):
        if item.startswith(("http://", "https://", "data:")):
            return cls(url=item)
        return cls(path=item)
    if isinstance(item, os.PathLike):
        return cls(path=item)
    if isinstance(item, (bytes, bytearray)):
        return cls(data=bytes(item))
    agno = getattr(item, "url", None), getattr(item, "content", None), getattr(item, "filepath", None)
    if any(v is not None for v in agno):  # Agno's Image/Audio/File: url, content or filepath
        media_type = getattr(item, "mime_type", None)
        url, data, path = agno
        if url:
            return cls(url=url, media_type=media_type)
        return (
            cls(data=data, media_type=media_type)
            if data is not None
            else cls(path=path, media_type=media_type)
        )
    raise DefinitionError(
        f"{where}: expected {cls.__name__}, a URL, a path or bytes, got {type(item).__name__}"
    )


#: a run's media options, the part class each takes, in the order they follow the input
MEDIA_OPTIONS: tuple[tuple[str, type[_MediaPart]], ...] = (
    ("images", ImagePart),
    ("audio", AudioPart),
    ("videos", VideoPart),
    ("files", FilePart),
)


def media_parts(items: Any, option: str, where: str) -> list[Any]:
    """The ``images=`` (``audio=``, ``videos=``, ``files=``) of a run as parts of that kind:
    parts, URLs, paths, bytes or Agno's media objects, one or a list (a DefinitionError
    naming ``where`` and the option for anything else)."""
    if items is None:
        return []
    cls = dict(MEDIA_OPTIONS)[option]
    if isinstance(items, (str, bytes, bytearray, os.PathLike, _MediaPart)) or not isinstance(items, Iterable):
        items = [items]
    elif isinstance(items, dict):
        raise DefinitionError(
            f"{where} {option}=: expected a list of {cls.__name__}, URLs, paths or bytes, got a dict"
        )
    parts = []
    for item in items:
        try:
            parts.append(_coerce(item, cls, f"{where} {option}="))
        except DefinitionError as exc:
            message = str(exc)
            if message.startswith(where):
                raise
            raise DefinitionError(f"{where} {option}=: {message}") from None  # a path, a URL, bytes
    return parts


def run_media(where: str, **given: Any) -> dict[str, list[Any]] | None:
    """A workflow run's ``images=``, ``audio=``, ``videos=`` and ``files=`` as lists of parts, by
    option (the empty ones left out; None when there are none): see :func:`media_parts`."""
    unknown = set(given) - {option for option, _ in MEDIA_OPTIONS}
    if unknown:
        raise DefinitionError(f"{where}: unknown media option(s) {', '.join(sorted(unknown))}")
    media = {option: media_parts(given.get(option), option, where) for option, _ in MEDIA_OPTIONS}
    found = {option: parts for option, parts in media.items() if parts}
    return found or None


def input_parts(
    input: Any,
    where: str,
    images: Iterable[Any] | None = None,
    audio: Iterable[Any] | None = None,
    files: Iterable[Any] | None = None,
    videos: Iterable[Any] | None = None,
) -> Any:
    """``input`` with the ``images=``, ``audio=``, ``videos=`` and ``files=`` of a run after it,
    as a list of parts (strings in those lists are URLs or paths); ``input`` itself when none
    are given."""
    given = {"images": images, "audio": audio, "videos": videos, "files": files}
    extra: list[Part] = []
    for option, _ in MEDIA_OPTIONS:
        extra.extend(media_parts(given[option], option, where))
    if not extra:
        return input
    parts = message_parts(input) if input is not None else []
    return [*parts, *extra]


def message_parts(input: Any) -> list[Part]:
    """``input`` as a user message's parts: parts as they are, anything else as text."""
    from plait._io import format_content

    items = input if isinstance(input, (list, tuple)) and has_media(input) else [input]
    return [item if isinstance(item, PART_TYPES) else TextPart(format_content(item)) for item in items]


def part_json(part: Part) -> dict[str, Any]:
    """A part as JSON, its bytes by digest (``blob``): what stores and recorded requests hold."""
    if isinstance(part, TextPart):
        return {"kind": "text", "text": part.text}
    data: dict[str, Any] = {"kind": part.kind, "media_type": part.media_type}
    if part.data is not None:
        from plait._blobs import remember

        data["blob"] = remember(part)
        data["size"] = len(part.data)
    else:
        data["url"] = part.url
    if isinstance(part, ImagePart) and part.detail is not None:
        data["detail"] = part.detail
    if isinstance(part, FilePart) and part.filename is not None:
        data["filename"] = part.filename
    return data


def without_bytes(value: Any) -> Any:
    """``value`` with every media part as :func:`part_json` (its digest, not its bytes), and the
    dataclasses and containers around them as dicts and lists: for JSON that reports, not stores
    (events)."""
    if isinstance(value, PART_TYPES):
        return part_json(value)
    if isinstance(value, (list, tuple)):
        return [without_bytes(item) for item in value]
    if isinstance(value, dict):
        return {key: without_bytes(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: without_bytes(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def part_from_json(data: dict[str, Any], where: str) -> Part:
    """The part :func:`part_json` wrote, its bytes found by digest (:mod:`plait._blobs`)."""
    kind = data.get("kind")
    if kind == "text":
        return TextPart(str(data.get("text", "")))
    cls = _BY_KIND.get(str(kind))
    if cls is None:
        raise DefinitionError(f"{where}: a stored part of unknown kind {kind!r}")
    extra: dict[str, Any] = {}
    if cls is ImagePart and data.get("detail") is not None:
        extra["detail"] = data["detail"]
    if cls is FilePart and data.get("filename") is not None:
        extra["filename"] = data["filename"]
    if data.get("blob") is not None:
        from plait._blobs import recall

        return cls(data=recall(data["blob"], where), media_type=data.get("media_type"), **extra)
    return cls(url=data.get("url"), media_type=data.get("media_type"), **extra)
