"""Recording at the provider boundary: every model and tool call of a run, answered again later.

One :class:`Recorder` per run (on :attr:`RunState.recorder`, made by :func:`for_stored_run` for a
run with storage; plait._record_store) or per :func:`plait.testing.cassette` block (plait._cassette). An agent asks :func:`active` once
per run; with a recorder it sends each model and tool call through :meth:`Recorder.model_call` and
:meth:`Recorder.tool_call`, which:

* answer the call from the recorded calls it was given (a resumed run's own, a replayed run's,
  a cassette's) when one matches: same step, same kind, same request fingerprint (a SHA-256 of
  the request's canonical JSON, secrets scrubbed), first recorded first;
* else, when strict (replay, cassette replay), raise :class:`~plait.errors.ReplayDivergenceError`
  with a diff against the recorded request at the same place;
* else make the call live and record it (when the recorder has a sink).

Payloads are stored content-addressed (:meth:`plait.storage.Storage.save_calls`): identical
payloads are stored once, a model request as a delta of the step's previous one (plait._record_store).
A model request's fingerprint leaves out the tool-call ids the provider
assigned (:func:`request_fingerprint`); the stored request keeps them. A run without storage and
without a cassette never builds a recorder: the agent pays two context-variable reads per run.
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait._context import current_step
from plait._record_data import Recorded, canonical, fingerprint
from plait._secrets import scrub_secrets
from plait.errors import ReplayDivergenceError
from plait.events import (
    Event,
    RunContentEvent,
    ToolCallCompletedEvent,
    tool_call_completed,
    tool_call_started,
)
from plait.models import Message, Model, ModelRequest, ModelResponse, Reasoning, ToolCall, Usage
from plait.tracing import chat_response_attributes, chat_span, replayed_attributes, span, tool_span

if TYPE_CHECKING:
    pass

__all__ = ["CASSETTE", "REPLAY", "Recorded", "Recorder", "ReplayRequest", "active", "fingerprint"]

#: the recorder of an active :func:`plait.testing.cassette` (it wins over a run's own)
CASSETTE: contextvars.ContextVar[Recorder | None] = contextvars.ContextVar("plait_cassette", default=None)


@dataclass(slots=True)
class ReplayRequest:
    """What a replay asks of the run it starts (and learns back: its recorder)."""

    origin: str
    live: bool
    recorder: Recorder | None = None


#: set by a replay for the run it starts
REPLAY: contextvars.ContextVar[ReplayRequest | None] = contextvars.ContextVar("plait_replay", default=None)

Sink = Callable[[list["Recorded"]], Awaitable[None]]


def active(agent: Any) -> Recorder | None:
    """The recorder an agent's run uses now: a cassette's, else its workflow run's; None when
    there is none, or the agent says ``record=False`` (unless a strict replay is under way:
    there, its calls are not in the record and stop the replay)."""
    recorder = CASSETTE.get()
    if recorder is None:
        ctx = current_step()
        if ctx is None:
            return None
        recorder = ctx.run.recorder
        if recorder is None:
            return None
    if not getattr(agent, "record", True) and not recorder.strict:
        # not recorded; a strict replay still sees its calls (and has nothing to answer them)
        return None
    result: Recorder = recorder
    return result


#: the JSON schema of each output type a recorded request used (pydantic builds it anew each time)
_SCHEMAS: dict[Any, dict[str, Any]] = {}


def _schema(schema: Any) -> dict[str, Any]:
    found = _SCHEMAS.get(schema)
    if found is None:
        found = schema.model_json_schema()
        if len(_SCHEMAS) < 256:
            _SCHEMAS[schema] = found
    return found


def request_fingerprint(payload: dict[str, Any], text: str) -> str:
    """The fingerprint of a model request (``text`` is its canonical JSON): the hash of the
    request with its tool-call ids replaced by their order of first appearance (``"1"``,
    ``"2"``...). Providers assign those ids and they differ between live runs, so a request
    made after a live call still matches the recorded one; the stored request keeps the real ids."""
    normal = _normalised(payload)
    return fingerprint(text if normal is None else canonical(normal))


def _normalised(payload: dict[str, Any]) -> dict[str, Any] | None:
    """``payload`` with its tool-call ids numbered in order of appearance; None without any."""
    messages = payload.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and ("tool_calls" in m or "tool_call_id" in m) for m in messages
    ):
        return None
    order: dict[Any, str] = {}

    def number(call_id: Any) -> str:
        return order.setdefault(call_id, str(len(order) + 1))

    normal = []
    for message in messages:
        if isinstance(message, dict) and ("tool_calls" in message or "tool_call_id" in message):
            message = dict(message)
            if isinstance(message.get("tool_calls"), list):
                message["tool_calls"] = [
                    {**c, "id": number(c.get("id"))} if isinstance(c, dict) else c
                    for c in message["tool_calls"]
                ]
            if "tool_call_id" in message:
                message["tool_call_id"] = number(message["tool_call_id"])
        normal.append(message)
    return {**payload, "messages": normal}


def _message(message: Message) -> dict[str, Any]:
    content: Any = message.content
    if isinstance(content, list):  # parts: media by digest, its bytes stored once (plait._blobs)
        from plait._parts import part_json

        content = [part_json(part) for part in content]
    data: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        data["tool_calls"] = [_tool_call(c) for c in message.tool_calls]
    if message.tool_call_id is not None:
        data["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        data["name"] = message.name
    if message.reasoning:  # only when there is some: the requests recorded before match still
        data["reasoning"] = [_reasoning(r) for r in message.reasoning]
    if message.is_error:
        data["is_error"] = True
    return data


def _reasoning(reasoning: Reasoning) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(reasoning).items() if v not in (None, "")}


def _tool_call(call: ToolCall) -> dict[str, Any]:
    data: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.arguments_error is not None:
        data["arguments_error"] = call.arguments_error
    return data


def request_json(model: Model, request: ModelRequest) -> dict[str, Any]:
    """The request as plait sends it, as JSON: model, messages, settings, tools, output schema."""
    settings = request.settings
    schema = request.output_schema
    return {
        "model": model.name,
        "messages": [_message(m) for m in request.messages],
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters} for t in request.tools
        ],
        "settings": {
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "top_p": settings.top_p,
            "stop": list(settings.stop) if settings.stop is not None else None,
            "seed": settings.seed,
            "extra": settings.extra,
        },
        "output_schema": None if schema is None else _schema(schema),
        "tool_choice": request.tool_choice,
    }


def response_json(response: ModelResponse, chunks: list[str] | None) -> dict[str, Any]:
    usage = response.usage
    data: dict[str, Any] = {
        "message": _message(response.message),
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "requests": usage.requests,
        },
        "finish_reason": response.finish_reason,
        "response_id": response.response_id,
        "model": response.model,
        "provider": response.provider,
    }
    if chunks is not None:
        data["chunks"] = chunks
    return data


def _load_message(data: dict[str, Any]) -> Message:
    return Message(
        data["role"],
        data.get("content"),
        [
            ToolCall(c["id"], c["name"], dict(c.get("arguments") or {}), c.get("arguments_error"))
            for c in data.get("tool_calls", [])
        ],
        data.get("tool_call_id"),
        data.get("name"),
        [Reasoning(**r) for r in data.get("reasoning", [])],
        bool(data.get("is_error", False)),
    )


def load_response(data: dict[str, Any]) -> ModelResponse:
    usage = data.get("usage") or {}
    return ModelResponse(
        _load_message(data["message"]),
        Usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0), usage.get("requests", 0)),
        data.get("finish_reason"),
        data.get("response_id"),
        data.get("model"),
        data.get("provider"),
    )


def _jsonable(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    try:
        return to_jsonable_python(value, inf_nan_mode="constants", bytes_mode="base64")
    except Exception:  # a result JSON cannot hold: its text is what the model saw
        from plait._io import format_content

        return format_content(value)


class Recorder:
    """Answers a run's model and tool calls from ``source`` and records the live ones to ``sink``.

    ``strict``: a call ``source`` does not have raises :class:`ReplayDivergenceError` instead of
    going live. ``origin`` names what is replayed (a run id, a cassette path) in that error.
    """

    def __init__(
        self,
        *,
        source: list[Recorded] | None = None,
        sink: Sink | None = None,
        strict: bool = False,
        origin: str = "",
        earlier: dict[str, int] | None = None,
        keep_answers: bool = False,
    ) -> None:
        self.sink = sink
        #: record the calls answered from ``source`` too (a replay is a run of its own)
        self.keep_answers = keep_answers
        self.strict = strict
        self.origin = origin
        #: by step id, the highest attempt recorded by earlier executions of this run (a resume):
        #: a step executed again records its calls as attempt that + 1, a new step as attempt 1
        self.earlier = earlier or {}
        self._answers: dict[tuple[str, str, str], deque[Recorded]] = {}
        self._at: dict[tuple[str, str, int], Recorded] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        #: how many calls were answered from the record, and how many went live
        self.replayed = 0
        self.live = 0
        #: the first divergence a strict recorder met (a step may have turned it into data)
        self.divergence: ReplayDivergenceError | None = None
        #: a shipped branch's recorder (plait._record_ship): how many answers it was given, by place
        self.shipped: dict[tuple[str, str, str], int] | None = None
        for item in source or ():
            if item.kind not in ("model", "tool"):
                continue  # a fork's stored change (plait._fork)
            key = item.fingerprint
            if item.kind == "model" and isinstance(item.request, dict):
                # from the request: a record made before tool-call ids were normalised matches too
                key = request_fingerprint(item.request, canonical(item.request))
            self._answers.setdefault((item.step_id, item.kind, key), deque()).append(item)
            self._at.setdefault((item.step_id, item.kind, item.index), item)

    def _place(self, kind: str) -> tuple[str, int]:
        ctx = current_step()
        step_id = ctx.step_id if ctx is not None else ""
        with self._lock:
            index = self._counts.get((step_id, kind), 0)
            self._counts[(step_id, kind)] = index + 1
        return step_id, index

    def _take(self, step_id: str, kind: str, key: str) -> Recorded | None:
        with self._lock:
            queue = self._answers.get((step_id, kind, key))
            if not queue:
                return None
            self.replayed += 1
            return queue.popleft()

    def _divergence(self, step_id: str, kind: str, index: int, request: Any) -> ReplayDivergenceError:
        where = f"step {step_id!r}" if step_id else "the agent run"
        what = "model request" if kind == "model" else "tool call"
        new = json.dumps(request, indent=2, sort_keys=True, default=str).splitlines()
        recorded = self._at.get((step_id, kind, index)) or self._closest(step_id, kind, new)
        origin = f" of {self.origin}" if self.origin else ""
        if recorded is None:
            made = sum(1 for (s, k, _i) in self._at if s == step_id and k == kind)
            body = "\n".join(new[:60])
            message = (
                f"replay{origin}: {where} made {what} #{index + 1}, which the record does not have "
                f"(the recorded run made {made} there):\n{body}"
            )
        else:
            old = json.dumps(recorded.request, indent=2, sort_keys=True, default=str).splitlines()
            import difflib

            diff = "\n".join(difflib.unified_diff(old, new, "recorded", "now", lineterm="", n=2))
            message = f"replay{origin}: {where} sent a different {what} (#{index + 1}) than recorded:\n{diff}"
        error = ReplayDivergenceError(
            message, step_id=step_id, recorded=None if recorded is None else recorded.request, request=request
        )
        if self.divergence is None:
            self.divergence = error
        return error

    def _closest(self, step_id: str, kind: str, new: list[str]) -> Recorded | None:
        """The recorded call of the step most like the new request (for the diff)."""
        candidates = [item for (s, k, _i), item in self._at.items() if s == step_id and k == kind][:50]
        if not candidates:
            return None

        def likeness(item: Recorded) -> float:
            old = json.dumps(item.request, indent=2, sort_keys=True, default=str).splitlines()
            import difflib

            return difflib.SequenceMatcher(None, old, new).ratio()

        return max(candidates, key=likeness)

    async def _keep(self, item: Recorded) -> None:
        if self.sink is not None:
            await self.sink([item])

    # -- model calls -------------------------------------------------------------------

    async def model_call(
        self,
        agent: Any,
        model: Model,
        request: ModelRequest,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        tracer: Any,
        live: Callable[..., Awaitable[ModelResponse]],
    ) -> ModelResponse:
        step_id, index = self._place("model")
        secrets = model.secrets()
        payload = request_json(model, request)
        text = canonical(payload)
        # parsed again only when a secret was in it (the scrubbed JSON is what is stored)
        if secrets and (scrubbed := scrub_secrets(text, secrets)) != text:
            text, payload = scrubbed, json.loads(scrubbed)
        normal = _normalised(payload)
        key = fingerprint(text if normal is None else canonical(normal))
        hit = self._take(step_id, "model", key)
        if hit is not None:
            if self.keep_answers:
                await self._keep(hit)
            return self._answer_model(agent, model, request, hit, emit, event, tracer)
        if self.strict:
            raise self._divergence(step_id, "model", index, payload)
        chunks: list[str] | None = None
        forward = emit
        if emit is not None:
            chunks = []
            collected = chunks

            def forward(item: Event) -> None:
                if isinstance(item, RunContentEvent) and isinstance(item.content, str):
                    collected.append(item.content)
                emit(item)

        response = await live(model, request, forward, event, tracer)
        with self._lock:
            self.live += 1
        answer = response_json(response, chunks)
        if secrets and (scrubbed := scrub_secrets(written := canonical(answer), secrets)) != written:
            answer = json.loads(scrubbed)
        attempt = self.earlier.get(step_id, 0) + 1
        digest = key if normal is None else None  # the text's hash, when that is the key
        await self._keep(
            Recorded("model", step_id, index, model.name, key, payload, answer, attempt, text, digest)
        )
        return response

    def _answer_model(
        self,
        agent: Any,
        model: Model,
        request: ModelRequest,
        hit: Recorded,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        tracer: Any,
    ) -> ModelResponse:
        response = load_response(hit.response)
        span_name, attributes = chat_span(model, request)
        with span(tracer, span_name, {**attributes, **replayed_attributes()}, kind="CLIENT") as current:
            if emit is not None:
                chunks = hit.response.get("chunks")
                if chunks is None:
                    chunks = [response.message.content] if response.message.content else []
                for text in chunks:
                    if text:
                        emit(event(RunContentEvent, content=text, agent_name=agent.name))
            if current is not None:
                current.set_attributes(chat_response_attributes(response))
        return response

    # -- tool calls --------------------------------------------------------------------

    async def tool_call(
        self,
        agent: Any,
        call: ToolCall,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        tracer: Any,
        live: Callable[[Callable[[Event], None]], Awaitable[Message]],
    ) -> Message:
        step_id, index = self._place("tool")
        payload = {"tool": call.name, "arguments": call.arguments, "arguments_error": call.arguments_error}
        text = canonical(payload)
        key = fingerprint(text)
        hit = self._take(step_id, "tool", key)
        if hit is not None:
            if self.keep_answers:
                await self._keep(hit)
            return self._answer_tool(agent, call, hit, emit, event, tracer)
        if self.strict:
            raise self._divergence(step_id, "tool", index, payload)
        seen: dict[str, Any] = {}

        def forward(item: Event) -> None:
            if isinstance(item, ToolCallCompletedEvent):
                seen["result"], seen["error"] = item.result, item.error
            if emit is not None:
                emit(item)

        message = await live(forward)
        with self._lock:
            self.live += 1
        answer = {
            "content": message.content,
            "result": _jsonable(seen.get("result")),
            "error": seen.get("error"),
        }
        attempt = self.earlier.get(step_id, 0) + 1
        await self._keep(
            Recorded("tool", step_id, index, call.name, key, payload, answer, attempt, text, key)
        )
        return message

    def _answer_tool(
        self,
        agent: Any,
        call: ToolCall,
        hit: Recorded,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
        tracer: Any,
    ) -> Message:
        answer = hit.response
        if emit is not None:
            emit(tool_call_started(event, agent.name, call))
        span_name, attributes = tool_span(call)
        with span(tracer, span_name, {**attributes, **replayed_attributes()}):
            pass
        if emit is not None:
            emit(tool_call_completed(event, agent.name, call, answer.get("result"), answer.get("error")))
        return Message("tool", answer.get("content"), tool_call_id=call.id, name=call.name)

    async def flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            await flush()
