"""``HttpRequest``: call an HTTP endpoint as a workflow step."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait import StepContext, StepInput, StepNode, StepOutput
from plait.errors import DefinitionError, PlaitError
from plait.retry import parse_retry_after

__all__ = ["HttpRequest", "HttpStatusError"]


class HttpStatusError(PlaitError):
    """The server answered with a status outside 2xx."""

    def __init__(self, message: str, *, status: int, retry_after: float | None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Response:
    status: int
    url: str
    content_type: str
    body: bytes
    retry_after: float | None = None


class HttpRequest(StepNode):
    """Send an HTTP request; the step's content is the parsed response body."""

    step_type = "http"
    runs_blocking_code = True

    def __init__(
        self,
        name: str,
        url: str | Callable[[StepInput], str],
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        request_timeout: float = 30.0,
        description: str | None = None,
        **policies: Any,
    ) -> None:
        super().__init__(name, description=description, **policies)
        if not (isinstance(url, str) or callable(url)):
            raise DefinitionError(f"HttpRequest {name!r}: url must be a string or a function, got {url!r}")
        if isinstance(url, str) and not url.startswith(("http://", "https://")):
            raise DefinitionError(
                f"HttpRequest {name!r}: url must start with http:// or https://, got {url!r}"
            )
        self.url = url
        self.method = method.upper()
        self.headers = dict(headers or {})
        self.json_body = json_body
        self.request_timeout = request_timeout

    async def execute(self, step_input: StepInput, ctx: StepContext) -> StepOutput:
        url = self._url(step_input)
        body = self.json_body(step_input) if callable(self.json_body) else self.json_body
        response = await ctx.run.runner.run_blocking(lambda: self._send(url, body))
        if not 200 <= response.status < 300:
            excerpt = response.body[:200].decode("utf-8", "replace")
            raise HttpStatusError(
                f"{self.method} {url} answered {response.status}: {excerpt}",
                status=response.status,
                retry_after=response.retry_after,
            )
        return StepOutput(content=_parse(response), metadata={"status": response.status, "url": response.url})

    def _url(self, step_input: StepInput) -> str:
        if callable(self.url):
            return self.url(step_input)
        quote = urllib.parse.quote_plus
        previous = step_input.previous_step_content
        return self.url.format(input=quote(str(step_input.input or "")), previous=quote(str(previous or "")))

    def _send(self, url: str, body: Any) -> _Response:
        import urllib.error  # here, not at the top: loading plugins stays light (a few ms)
        import urllib.request

        data = None
        headers = {"Accept": "application/json", **self.headers}
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(url, data=data, headers=headers, method=self.method)
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as reply:
                return _Response(reply.status, reply.url, reply.headers.get("Content-Type", ""), reply.read())
        except urllib.error.HTTPError as error:
            with error:
                return _Response(
                    error.code,
                    url,
                    error.headers.get("Content-Type", ""),
                    error.read(),
                    parse_retry_after(error.headers),
                )


def _parse(response: _Response) -> Any:
    text = response.body.decode("utf-8", "replace")
    if "json" in response.content_type:
        return json.loads(text)
    return text
