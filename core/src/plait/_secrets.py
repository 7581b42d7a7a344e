"""Keeping credentials out of error messages.

A provider that quotes the request back (a 401 echoing the ``Authorization``
header, a proxy repeating a URL with a password) must not put a secret into an
exception, and from there into span events, error events and stored run
records. :func:`scrub_exception` replaces every known secret in the messages of
an exception and of every exception chained to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["credentials", "scrub_exception", "scrub_secrets"]

#: Shorter values are not scrubbed: replacing "ab" everywhere would garble messages,
#: and a credential that short protects nothing.
MIN_SECRET_LENGTH = 8

#: Header names whose values are credentials (compared in lower case, by substring).
_CREDENTIAL_HEADER_WORDS = (
    "authorization",
    "api-key",
    "api_key",
    "apikey",
    "token",
    "secret",
    "cookie",
    "password",
)
_AUTH_SCHEMES = ("bearer ", "basic ", "token ")


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def credentials(*values: object, headers: Mapping[str, str] | None = None) -> list[str]:
    """The secrets among ``values`` (API keys) and credential-like ``headers``, longest first.

    Values shorter than :data:`MIN_SECRET_LENGTH` or not strings are left out. A
    header such as ``Authorization: Bearer sk-...`` gives the whole value and the
    bare token, since a server may quote either.
    """
    found: set[str] = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
    for name, value in (headers or {}).items():
        if not isinstance(value, str) or not any(
            word in str(name).lower() for word in _CREDENTIAL_HEADER_WORDS
        ):
            continue
        found.add(value)
        for scheme in _AUTH_SCHEMES:
            if value.lower().startswith(scheme):
                found.add(value[len(scheme) :].strip())
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def _scrubbed(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_secrets(value, secrets)
    if isinstance(value, Mapping):
        return {key: _scrubbed(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(_scrubbed(item, secrets) for item in value)
    return value


#: Attributes SDK exceptions keep their message or the server's answer in.
_TEXT_ATTRIBUTES = ("message", "body", "doc", "msg", "detail")


def scrub_exception(exc: BaseException, secrets: list[str]) -> BaseException:
    """``exc`` with ``secrets`` removed from its message, notes and text attributes,
    and from those of every exception in its ``__cause__``/``__context__`` chain.

    Changes the exceptions in place (their identity and type stay) and returns ``exc``.
    """
    if not secrets:
        return exc
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_scrubbed(arg, secrets) for arg in current.args)
        notes = getattr(current, "__notes__", None)
        if isinstance(notes, list):
            current.__notes__ = [_scrubbed(note, secrets) for note in notes]
        for attribute in _TEXT_ATTRIBUTES:
            value = getattr(current, attribute, None)
            if isinstance(value, str | Mapping | list):
                try:
                    setattr(current, attribute, _scrubbed(value, secrets))
                except (AttributeError, TypeError):  # a read-only property
                    pass
        stack.extend(linked for linked in (current.__cause__, current.__context__) if linked is not None)
    return exc
