"""Tracing through the OpenTelemetry API.

plait depends on ``opentelemetry-api`` only. With no SDK configured (the API's
proxy provider is still in place), :func:`resolve_tracer` returns ``None`` and
the executor creates no spans at all, so tracing costs next to nothing; until
something imports the API (an SDK being set up does), plait does not import it
either. Pass
``tracer_provider=`` to a workflow or agent to use a provider of your own
instead of the global one.

Span names and attributes are decided here, in one place:

* workflow runs: ``invoke_workflow {name}``
* steps and containers: ``{step_type} {name}`` (no GenAI convention exists yet)
* agents and teams: ``invoke_agent {name}``; model calls: ``chat {model}``; tools:
  ``execute_tool {name}`` (:func:`agent_span`, :func:`chat_span`, :func:`tool_span`)

No other module names a span attribute: they use :class:`ATTR` and the helpers here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from plait.errors import root_cause

if TYPE_CHECKING:
    from opentelemetry import trace

__all__ = [
    "ATTR",
    "Instruments",
    "add_current_span_event",
    "agent_span",
    "annotate_current_span",
    "budget_attributes",
    "capture_content",
    "chat_response_attributes",
    "chat_span",
    "close_span",
    "lineage_attributes",
    "messages_json",
    "metadata_attributes",
    "open_span",
    "rate_limit_wait_attributes",
    "record_error",
    "resolve_meter",
    "resolve_tracer",
    "retry_event_attributes",
    "span",
    "step_span",
    "step_span_name",
    "token_usage_points",
    "tool_content_attributes",
    "tool_span",
    "truncate",
    "usage_attributes",
    "workflow_span",
    "workflow_span_name",
]


@functools.cache
def _version() -> str | None:
    """plait's version, for the instrumentation scope (read once, when first needed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("plait")
    except PackageNotFoundError:  # running from a source tree
        return None


class ATTR:
    """Attribute names used on plait's spans."""

    OPERATION = "gen_ai.operation.name"
    WORKFLOW_NAME = "gen_ai.workflow.name"
    AGENT_NAME = "gen_ai.agent.name"
    PROVIDER = "gen_ai.provider.name"
    REQUEST_MODEL = "gen_ai.request.model"
    RESPONSE_MODEL = "gen_ai.response.model"
    RESPONSE_ID = "gen_ai.response.id"
    FINISH_REASONS = "gen_ai.response.finish_reasons"
    INPUT_TOKENS = "gen_ai.usage.input_tokens"
    OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
    TOOL_NAME = "gen_ai.tool.name"
    TOOL_CALL_ID = "gen_ai.tool.call.id"
    TOOL_TYPE = "gen_ai.tool.type"
    SPAN_KIND = "openinference.span.kind"
    RUN_ID = "plait.run.id"
    SESSION_ID = "plait.session.id"
    WORKFLOW_ID = "plait.workflow.id"
    STEP_ID = "plait.step.id"
    STEP_TYPE = "plait.step.type"
    NESTED_DEPTH = "plait.nested_depth"
    BRANCH = "plait.parallel.branch"
    ITERATION = "plait.loop.iteration"
    ROUTER_SELECTED = "plait.router.selected"
    CONDITION_RESULT = "plait.condition.result"
    ATTEMPT = "plait.retry.attempt"
    RETRY_DELAY = "delay"
    CACHE_HIT = "plait.cache.hit"
    LOOP_ITERATIONS = "plait.loop.iterations"
    APPROVAL_APPROVED = "plait.approval.approved"
    APPROVAL_CHOICE = "plait.approval.choice"
    TEAM_MODE = "plait.team.mode"
    PAUSED = "plait.paused"
    RUN_STATUS = "plait.run.status"
    #: a forked run's original run id, and the step it was forked at
    FORK_OF = "plait.fork.of"
    FORK_STEP = "plait.fork.step"
    #: a replayed run's original run id
    REPLAY_OF = "plait.replay.of"
    #: a model or tool call answered from a recorded run instead of being made
    REPLAYED = "plait.replayed"
    TOKEN_TYPE = "gen_ai.token.type"
    REQUEST_TEMPERATURE = "gen_ai.request.temperature"
    REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
    REQUEST_TOP_P = "gen_ai.request.top_p"
    REQUEST_SEED = "gen_ai.request.seed"
    INPUT_MESSAGES = "gen_ai.input.messages"
    OUTPUT_MESSAGES = "gen_ai.output.messages"
    TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
    TOOL_CALL_RESULT = "gen_ai.tool.call.result"
    ERROR_TYPE = "error.type"
    FALLBACK_ANSWERED_BY = "plait.fallback.answered_by"
    FALLBACK_SKIPPED = "plait.fallback.skipped"
    #: a prefix: ``plait.budget.left.max_requests``, ``plait.budget.limit.max_cost``, ...
    BUDGET_LEFT = "plait.budget.left"
    BUDGET_LIMIT = "plait.budget.limit"
    #: a model call that waited for a rate limit (the ``rate_limit.wait`` span event): the
    #: limits keys and which of their limits held it, and the seconds it waited in all
    RATE_LIMIT_KEYS = "plait.rate_limit.keys"
    RATE_LIMIT_LIMITS = "plait.rate_limit.limits"
    RATE_LIMIT_WAITED = "plait.rate_limit.waited"


def _global_unset(module: Any, attribute: str, variable: str) -> bool:
    """True while no global provider is installed (nor named by its environment variable).

    Checked on every run, so it avoids the API's getter, which reads the environment
    on each call while nothing is installed."""
    if getattr(module, attribute, False) is not None:
        return False
    return _env_unset(variable)


_ENV_UNSET: dict[str, bool] = {}


def _api(module: str, variable: str) -> Any:
    """The OpenTelemetry API ``module`` if a global provider may be installed, else None:
    one can only be installed through the module (so not before it is imported) or
    named by its environment variable."""
    loaded = sys.modules.get(module)
    if loaded is None:
        if _ENV_UNSET.get(variable) or _env_unset(variable):  # known unset: no call (every run)
            return None
        import importlib

        loaded = importlib.import_module(module)
    return loaded


def _env_unset(variable: str) -> bool:
    unset: bool | None = _ENV_UNSET.get(variable)
    if unset is None:
        unset = _ENV_UNSET[variable] = variable not in os.environ
    return unset


def resolve_tracer(tracer_provider: Any = None) -> trace.Tracer | None:
    """The tracer to use, or ``None`` when no OpenTelemetry SDK is configured."""
    if tracer_provider is None:
        api = _api("opentelemetry.trace", "OTEL_PYTHON_TRACER_PROVIDER")
        if api is None or _global_unset(api, "_TRACER_PROVIDER", "OTEL_PYTHON_TRACER_PROVIDER"):
            return None
        tracer_provider = api.get_tracer_provider()
    from opentelemetry import trace

    if isinstance(tracer_provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    tracer: trace.Tracer = tracer_provider.get_tracer("plait", _version())
    return tracer


def resolve_meter() -> Any:
    """plait's instruments when an OpenTelemetry metrics SDK is configured, else ``None``."""
    metrics_internal = _api("opentelemetry.metrics._internal", "OTEL_PYTHON_METER_PROVIDER")
    if metrics_internal is None or _global_unset(
        metrics_internal, "_METER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER"
    ):
        return None
    from opentelemetry import metrics

    provider = metrics.get_meter_provider()
    if type(provider).__name__ in ("_ProxyMeterProvider", "NoOpMeterProvider"):
        return None
    return _instruments(provider)


_instrument_cache: dict[int, Any] = {}


class Instruments:
    """The OpenTelemetry instruments plait records into."""

    def __init__(self, meter: Any) -> None:
        self.workflow_duration = meter.create_histogram(
            "plait.workflow.duration", unit="s", description="Workflow run duration"
        )
        self.step_duration = meter.create_histogram(
            "plait.step.duration", unit="s", description="Step duration"
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used by model calls"
        )
        self.errors = meter.create_counter("plait.step.errors", description="Steps that failed")
        self.retries = meter.create_counter("plait.step.retries", description="Step and model-call retries")


def _instruments(provider: Any) -> Instruments:
    cached: Instruments | None = _instrument_cache.get(id(provider))
    if cached is None:
        cached = _instrument_cache[id(provider)] = Instruments(provider.get_meter("plait", _version()))
    return cached


#: what containers decided (their output's ``metadata``), as span attributes
_METADATA_ATTRIBUTES = {
    ("Condition", "result"): ATTR.CONDITION_RESULT,
    ("Router", "selected"): ATTR.ROUTER_SELECTED,
    ("Loop", "iterations"): ATTR.LOOP_ITERATIONS,
    ("Approval", "approved"): ATTR.APPROVAL_APPROVED,
    ("Approval", "choice"): ATTR.APPROVAL_CHOICE,
}


def metadata_attributes(step_type: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Span attributes for what a container decided."""
    attributes = {}
    for key, value in metadata.items():
        name = _METADATA_ATTRIBUTES.get((step_type, key))
        if name is not None and isinstance(value, (str, bool, int, float, list)):
            attributes[name] = value
    return attributes


def capture_content() -> bool:
    """Whether prompts and completions may be recorded on spans: off unless opted in with
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (the GenAI convention's
    switch) or ``PLAIT_CAPTURE_CONTENT=true``."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
        for name in ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "PLAIT_CAPTURE_CONTENT")
    )


def truncate(text: str, limit: int | None = None) -> str:
    """``text`` cut to ``PLAIT_CAPTURE_MAX_CHARS`` (default 4096) characters."""
    limit = limit or int(os.environ.get("PLAIT_CAPTURE_MAX_CHARS", "4096"))
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text) - limit} more characters]"


# -- agents, teams, model and tool calls ---------------------------------------------------


def agent_span(name: str, model: Any, *, team_mode: str | None = None) -> tuple[str, dict[str, Any]]:
    """The name and attributes of an ``invoke_agent`` span; a team's carries its leader's model."""
    attributes: dict[str, Any] = {
        ATTR.OPERATION: "invoke_agent",
        ATTR.AGENT_NAME: name,
        ATTR.REQUEST_MODEL: model.model,
        ATTR.PROVIDER: model.provider,
        ATTR.SPAN_KIND: "AGENT",
    }
    if team_mode is not None:
        attributes[ATTR.TEAM_MODE] = team_mode
    return f"invoke_agent {name}", attributes


def retry_event_attributes(attempt: int, delay: float, exc: BaseException) -> dict[str, Any]:
    """The attributes of a ``retry`` span event: which try failed, how, and the wait before the next."""
    return {ATTR.ATTEMPT: attempt, ATTR.RETRY_DELAY: delay, ATTR.ERROR_TYPE: type(exc).__name__}


def usage_attributes(usage: Any) -> dict[str, Any]:
    """Token counts (a :class:`plait.models.Usage`) as GenAI attributes."""
    return {ATTR.INPUT_TOKENS: usage.input_tokens, ATTR.OUTPUT_TOKENS: usage.output_tokens}


def chat_span(model: Any, request: Any) -> tuple[str, dict[str, Any]]:
    """The name and attributes of a model call's ``chat`` span; the prompt only when capture is on."""
    attributes: dict[str, Any] = {
        ATTR.OPERATION: "chat",
        ATTR.PROVIDER: model.provider,
        ATTR.REQUEST_MODEL: model.model,
        ATTR.SPAN_KIND: "LLM",
    }
    settings = request.settings
    for name, value in (
        (ATTR.REQUEST_TEMPERATURE, settings.temperature),
        (ATTR.REQUEST_MAX_TOKENS, settings.max_tokens),
        (ATTR.REQUEST_TOP_P, settings.top_p),
        (ATTR.REQUEST_SEED, settings.seed),
    ):
        if value is not None:
            attributes[name] = value
    if capture_content():
        attributes[ATTR.INPUT_MESSAGES] = truncate(messages_json(request.messages))
    return f"chat {model.model}", attributes


def chat_response_attributes(response: Any) -> dict[str, Any]:
    """GenAI attributes of a model call's response; the completion only when capture is on."""
    attributes = usage_attributes(response.usage)
    if response.model:
        attributes[ATTR.RESPONSE_MODEL] = response.model
    if response.response_id:
        attributes[ATTR.RESPONSE_ID] = response.response_id
    if response.finish_reason:
        attributes[ATTR.FINISH_REASONS] = [response.finish_reason]
    if response.answered_by is not None:  # a FallbackModel chose the model that answered
        attributes[ATTR.FALLBACK_ANSWERED_BY] = response.answered_by
        attributes[ATTR.FALLBACK_SKIPPED] = list(response.fallbacks)
    if capture_content():
        attributes[ATTR.OUTPUT_MESSAGES] = truncate(messages_json([response.message]))
    return attributes


def token_usage_points(
    model: Any, usage: Any, answered_by: str | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """The ``gen_ai.client.token.usage`` histogram points of one model call: (value, attributes).
    ``answered_by`` (``provider:model``, a FallbackModel's answering member) names the model."""
    if answered_by is not None:
        provider, _, name = answered_by.partition(":")
    else:
        provider, name = model.provider, model.model
    base = {ATTR.OPERATION: "chat", ATTR.PROVIDER: provider, ATTR.REQUEST_MODEL: name}
    return [
        (usage.input_tokens, {**base, ATTR.TOKEN_TYPE: "input"}),
        (usage.output_tokens, {**base, ATTR.TOKEN_TYPE: "output"}),
    ]


def budget_attributes(limits: dict[str, float], left: dict[str, float]) -> dict[str, Any]:
    """A budget's limits and what is left of each, as span attributes."""
    attributes: dict[str, Any] = {f"{ATTR.BUDGET_LIMIT}.{k}": v for k, v in limits.items()}
    attributes.update({f"{ATTR.BUDGET_LEFT}.{k}": v for k, v in left.items()})
    return attributes


def annotate_current_span(attributes: dict[str, Any]) -> None:
    """Set ``attributes`` on the current span, if tracing is on and a span is recording."""
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes(attributes)


def add_current_span_event(name: str, attributes: dict[str, Any]) -> None:
    """Add the event ``name`` to the current span, if tracing is on and a span is recording."""
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.add_event(name, attributes)


def rate_limit_wait_attributes(waits: list[Any], waited: float) -> dict[str, Any]:
    """The attributes of a ``rate_limit.wait`` span event: the :class:`plait._limits.RateWait`
    s that held a model call (key and limit of each) and the seconds it waited in all."""
    return {
        ATTR.RATE_LIMIT_KEYS: [w.key for w in waits],
        ATTR.RATE_LIMIT_LIMITS: [w.limit for w in waits],
        ATTR.RATE_LIMIT_WAITED: round(waited, 3),
    }


def replayed_attributes() -> dict[str, Any]:
    """A model or tool call answered from a recorded run instead of being made."""
    return {ATTR.REPLAYED: True}


def tool_span(call: Any) -> tuple[str, dict[str, Any]]:
    """The name and attributes of a tool call's ``execute_tool`` span."""
    return f"execute_tool {call.name}", {
        ATTR.OPERATION: "execute_tool",
        ATTR.TOOL_NAME: call.name,
        ATTR.TOOL_TYPE: "function",
        ATTR.TOOL_CALL_ID: call.id,
        ATTR.SPAN_KIND: "TOOL",
    }


def tool_content_attributes(arguments: Any, result: str) -> dict[str, Any]:
    """A tool call's arguments and result, for when capture is on."""
    return {
        ATTR.TOOL_CALL_ARGUMENTS: truncate(json.dumps(arguments, default=str)),
        ATTR.TOOL_CALL_RESULT: truncate(result),
    }


def _parts_text(parts: list[Any]) -> str:
    from plait._parts import parts_text

    return parts_text(parts)  # media named, never their bytes


def messages_json(messages: list[Any]) -> str:
    """Chat messages (:class:`plait.models.Message`) as the GenAI conventions' JSON."""
    return json.dumps(
        [
            {
                "role": m.role,
                "content": m.content if not isinstance(m.content, list) else _parts_text(m.content),
                **(
                    {
                        "tool_calls": [
                            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls
                        ]
                    }
                    if m.tool_calls
                    else {}
                ),
            }
            for m in messages
        ],
        default=str,
        ensure_ascii=False,
    )


# -- workflows and steps ---------------------------------------------------------------------


def workflow_span_name(name: str) -> str:
    return f"invoke_workflow {name}"


def workflow_span(workflow: Any, run_id: str, session_id: str, depth: int) -> tuple[str, dict[str, Any]]:
    """The name and attributes of a workflow run's ``invoke_workflow`` span."""
    return workflow_span_name(workflow.name), {
        ATTR.OPERATION: "invoke_workflow",
        ATTR.WORKFLOW_NAME: workflow.name,
        ATTR.WORKFLOW_ID: workflow.id,
        ATTR.RUN_ID: run_id,
        ATTR.SESSION_ID: session_id,
        ATTR.NESTED_DEPTH: depth,
        ATTR.SPAN_KIND: "CHAIN",
    }


def lineage_attributes(lineage: dict[str, str]) -> dict[str, Any]:
    """The span attributes that say where a forked or replayed run comes from."""
    attributes: dict[str, Any] = {}
    if lineage.get("forked_from"):
        attributes[ATTR.FORK_OF] = lineage["forked_from"]
        if lineage.get("fork_step"):
            attributes[ATTR.FORK_STEP] = lineage["fork_step"]
    if lineage.get("replay_of"):
        attributes[ATTR.REPLAY_OF] = lineage["replay_of"]
    return attributes


def step_span(
    name: str, step_type: str, step_id: str, run_id: str, branch: int | None = None
) -> tuple[str, dict[str, Any]]:
    """The name and attributes of a step's (or container's) span; ``branch`` is its index
    among a Parallel's branches."""
    attributes: dict[str, Any] = {
        ATTR.STEP_ID: step_id,
        ATTR.STEP_TYPE: step_type,
        ATTR.RUN_ID: run_id,
        ATTR.SPAN_KIND: "CHAIN",
    }
    if branch is not None:
        attributes[ATTR.BRANCH] = branch
    return step_span_name(step_type, name), attributes


def step_span_name(step_type: str, name: str) -> str:
    """``"parallel research"``: span names stay lower case (the OpenTelemetry habit, and
    what dashboards built before plait adopted Agno's ``"Parallel"`` match)."""
    return f"{step_type.lower()} {name}"


@contextlib.contextmanager
def span(
    tracer: trace.Tracer | None,
    name: str,
    attributes: dict[str, Any],
    *,
    kind: str = "INTERNAL",
) -> Iterator[trace.Span | None]:
    """The current span for a block (``None`` without a tracer); an exception escaping
    the block is recorded on it as its error. ``kind`` names a ``SpanKind`` member."""
    if tracer is None:
        yield None
        return
    from opentelemetry import trace

    with tracer.start_as_current_span(
        name,
        kind=trace.SpanKind[kind],
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except Exception as exc:
            record_error(current, root_cause(exc))
            raise


def open_span(tracer: trace.Tracer, name: str, attributes: dict[str, Any]) -> tuple[Any, Any]:
    """Enter a span (and make it current) that :func:`close_span` ends: (its context
    manager, the span). For frames that cannot wrap their work in a ``with`` block (the
    executor's: a step's span stays open across its events and hooks)."""
    cm = tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    )
    return cm, cm.__enter__()


def close_span(cm: Any, span: Any, error: BaseException | None = None) -> None:
    """End a span from :func:`open_span`; an Exception is recorded on it (its root cause,
    not plait's wrapper)."""
    if isinstance(error, Exception) and span is not None:
        record_error(span, root_cause(error))
    cm.__exit__(None, None, None)


def record_error(span: trace.Span, exc: BaseException) -> None:
    """Mark ``span`` failed with ``exc``: status ERROR, ``error.type``, the exception event."""
    span.set_attribute(ATTR.ERROR_TYPE, type(exc).__qualname__)
    span.record_exception(exc)
    from opentelemetry import trace

    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
