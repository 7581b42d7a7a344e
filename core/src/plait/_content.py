"""Content as text: :func:`format_content`, and :class:`ParallelContent`, the content after
a :class:`~plait.Parallel`: every branch's content by name, which reads as Agno's sectioned
text wherever it is used as text."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from plait._public import publish as _publish

__all__ = ["ParallelContent", "format_content"]


class ParallelContent(dict[str, Any]):
    """The content after a :class:`~plait.Parallel`: every branch's content by name, which
    reads as Agno's sectioned text wherever it is used as text.

    By branch, it is the dict it subclasses: ``content["web"]``, ``.items()``, ``.keys()``,
    ``.values()``, ``.get()``, iteration over the names, ``==`` a dict, ``json.dumps``.

    As text, it is Agno's aggregated content (:meth:`as_text`)::

        ## Parallel Execution Results

        ### ✅ SUCCESS: web
        <the web branch's content>

        ### ❌ FAILURE: papers
        <its content, or its error>

    ``str(content)``, f-strings, ``print``, slicing (``content[:500]``), ``content[0]``,
    ``"word" in content`` (a branch name, or any text in it), ``content + "..."``,
    ``content == "..."`` and the ``str`` methods (``.lower()``, ``.split()``, ``.find()``, ...)
    all read that text. Content that is not text appears in its section as JSON.

    It is a dict, not a ``str``, so that ``json.dumps``, pydantic, storage and ``==`` treat
    it as the branches it holds, as before. So ``len(content)`` and iteration count and
    yield the branches (a mapping's invariants, which libraries rely on), and where a real
    ``str`` is required (``len`` of the text, ``re.search``, ``"".join``, a pydantic ``str``
    field) pass ``str(content)``. Test a branch with ``name in content.keys()``: plain ``in``
    also finds the text.

    ``failures`` names the branches that failed (a skipped failure, ``success=False``), with
    their errors. The codec (:mod:`plait._codec`) stores it as itself.
    """

    __slots__ = ("_failures",)

    def __init__(
        self,
        branches: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        failures: Mapping[str, str | None] | None = None,
    ) -> None:
        super().__init__(branches)
        self._failures: dict[str, str | None] = dict(failures or {})

    @property
    def failures(self) -> dict[str, str | None]:
        """The branches that failed, by name, with their error (None when none was recorded)."""
        return self._failures

    def as_text(self) -> str:
        """Agno's aggregated text: a heading, then a section per branch with its status."""
        failures = self._failures
        text = "## Parallel Execution Results\n\n"
        for name, value in dict.items(self):
            failed = name in failures
            body = format_content(value)
            if failed and not body.strip():
                body = failures[name] or ""
            text += f"### {'❌ FAILURE:' if failed else '✅ SUCCESS:'} {name}\n"
            text += f"{body}\n\n" if body.strip() else "*(No content)*\n\n"
        return text.strip()

    def __str__(self) -> str:
        return self.as_text()

    def __format__(self, spec: str) -> str:
        return format(self.as_text(), spec)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (slice, int)) and not isinstance(key, bool):
            return self.as_text()[key]  # content[:500], content[0]: the text
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            branches = ", ".join(repr(name) for name in dict.keys(self))
            raise KeyError(
                f"the Parallel's content has no branch {key!r}; its branches: {branches}"
            ) from None

    def __contains__(self, item: object) -> bool:
        if dict.__contains__(self, item):
            return True
        return isinstance(item, str) and item in self.as_text()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.as_text() == other
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # a dict: unhashable

    def __add__(self, other: Any) -> str:
        if isinstance(other, str):
            return self.as_text() + other
        return NotImplemented

    def __radd__(self, other: Any) -> str:
        if isinstance(other, str):
            return other + self.as_text()
        return NotImplemented

    def __getattr__(self, name: str) -> Any:
        # str's methods read the text (content.lower(), .split(), .find(), ...); dict's own
        # methods (get, items, ...) are found before this is asked
        if not name.startswith("_") and hasattr(str, name):
            return getattr(self.as_text(), name)
        raise AttributeError(f"'ParallelContent' object has no attribute {name!r}")

    def copy(self) -> ParallelContent:
        return ParallelContent(self, self._failures)

    def __reduce__(self) -> Any:
        return (ParallelContent, (dict(self), self._failures))

    def __copy__(self) -> ParallelContent:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> ParallelContent:

        return ParallelContent(copy.deepcopy(dict(self), memo), dict(self._failures))


def format_content(content: Any) -> str:
    """Content as text: strings as they are, a Parallel's content as Agno's section per
    branch, a dict of texts as a section per key, pydantic models, dataclasses and other
    data as JSON."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = sys.modules.get("plait._parts")  # not imported: no content can be a part
    if parts is not None and parts.has_media(content):
        return str(parts.parts_text(content))
    if isinstance(content, dict):
        if isinstance(content, ParallelContent):
            return content.as_text()
        if all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in content.items()):
            return "\n\n".join(f"## {name}\n{format_content(value)}" for name, value in content.items())
    dump = getattr(content, "model_dump_json", None)
    if callable(dump):
        return str(dump())
    try:
        return json.dumps(content, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(content)


def _json_default(value: Any) -> Any:
    """What :func:`format_content` writes for a value JSON has no form for: a pydantic
    model or a dataclass as its fields, anything else as its ``str``."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return str(value)


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
