"""Agno's Agent and Team options that plait does not take as they are.

Agno code passes many constructor options (``Agent(db=..., markdown=True, ...)``).
plait never drops one silently: each is either supported (:func:`agent_extras`
turns the cheap ones into instructions or policies), accepted because plait
already behaves so (``telemetry=False``), warned about (it changes nothing
that matters to the run), or rejected with a :class:`DefinitionError` naming the
plait way. Anything else is an unknown option, also an error.
"""

from __future__ import annotations

import warnings
from typing import Any

from plait.errors import DefinitionError

__all__ = ["MARKDOWN_INSTRUCTION", "REJECTED", "WARNED", "agent_extras"]

#: Agno's instruction for ``markdown=True`` (added when there is no ``output_schema``)
MARKDOWN_INSTRUCTION = "Use markdown to format your answers."

_STATELESS = (
    "plait agents keep a conversation (run(x, session_id=...), history=N) but no memory beyond it: "
    "a workflow keeps the state (Workflow(storage=...), session_state), and a step passes what an "
    "agent needs in its input"
)

#: option -> why plait refuses it and what to do instead
REJECTED: dict[str, str] = {
    "session_id": "pass session_id= to run(...): agent.run(x, session_id='s')",
    "user_id": "pass it to the workflow run or in session_state",
    "session_state": "session state belongs to the workflow: Workflow(session_state={...})",
    "add_history_to_messages": "Agno 2's (and plait's) name is add_history_to_context= (or history=N)",
    "num_history_responses": "Agno 2's (and plait's) name is num_history_runs= (or history=N)",
    "read_chat_history": _STATELESS,
    "memory": _STATELESS,
    "memory_manager": _STATELESS,
    "enable_user_memories": _STATELESS,
    "enable_agentic_memory": _STATELESS,
    "enable_session_summaries": _STATELESS,
    "knowledge": "plait has no knowledge base: give the agent a retrieval tool (tools=[search])",
    "search_knowledge": "plait has no knowledge base: give the agent a retrieval tool (tools=[search])",
    "add_datetime_to_context": "plait keeps prompts deterministic: put the date in instructions= or in the input",
    "add_location_to_context": "plait keeps prompts deterministic: put the location in instructions= or in the input",
    "reasoning": "plait has no reasoning mode: use a reasoning model (model=...) or a step that plans",
    "response_model": "plait's (and Agno 2's) name is output_schema=",
    "input_schema": "validate the input in a step before the agent (Workflow(input_schema=...) for a run)",
    "stream": "pass stream=True to run(...) or print_response(...), not to the constructor",
    "stream_events": "pass stream_events=True to run(...), not to the constructor",
    "parser_model": "plait validates the agent's own reply into output_schema=",
    "output_model": "plait validates the agent's own reply into output_schema=",
    "use_json_mode": "plait picks native structured output or a JSON instruction itself (output_schema=)",
    "structured_outputs": "plait picks native structured output or a JSON instruction itself (output_schema=)",
    "pre_hooks": "wrap the agent in a Step with an executor, or use plait's plugin hooks",
    "post_hooks": "wrap the agent in a Step with an executor, or use plait's plugin hooks",
    "tool_hooks": "wrap the tool's function, or use plait's plugin hooks",
    "system_message": "give instructions= (plait builds the system prompt from them)",
    "tool_call_limit": "plait's name is max_tool_rounds=",
    "delay_between_retries": "give retry=RetryPolicy(initial_delay=...)",
    "exponential_backoff": "give retry=RetryPolicy(...), which backs off exponentially",
}

#: option -> why it changes nothing in plait (a warning, the run goes on)
WARNED: dict[str, str] = {
    "debug_mode": "plait has no debug mode: use `plait run ... --tree`, tracing (tracer_provider=) or logging",
    "debug_level": "plait has no debug mode: use `plait run ... --tree`, tracing (tracer_provider=) or logging",
    "show_tool_calls": "plait's print_response and event stream show tool calls already",
    "monitoring": "plait sends nothing to a hosted service: use tracing (tracer_provider=) for monitoring",
}


def agent_extras(
    where: str, options: dict[str, Any], *, has_output_schema: bool
) -> tuple[list[str], int | None]:
    """Check Agno's extra options of an Agent or Team (``where`` names it in errors).

    Returns the instructions they add (``markdown=True``, ``expected_output=``,
    ``additional_context=``) and Agno's ``retries=N`` (None when not given).
    """
    instructions: list[str] = []
    retries: int | None = None
    for option, value in options.items():
        if option == "markdown":
            if not isinstance(value, bool):
                raise DefinitionError(f"{where}: markdown must be True or False, got {value!r}")
            if value and not has_output_schema:
                instructions.append(MARKDOWN_INSTRUCTION)
        elif option == "expected_output":
            if value is not None:
                instructions.append(f"<expected_output>\n{value}\n</expected_output>")
        elif option == "additional_context":
            if value is not None:
                instructions.append(str(value))
        elif option == "retries":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise DefinitionError(f"{where}: retries must be an int >= 0, got {value!r}")
            retries = value
        elif option in REJECTED:
            raise DefinitionError(f"{where}: {option}= is Agno's option, not plait's: {REJECTED[option]}")
        elif option in WARNED:
            if value:  # debug_mode=False (or monitoring=False) asks for nothing plait does not do
                warnings.warn(
                    f"{where}: {option}= changes nothing in plait: {WARNED[option]}",
                    UserWarning,
                    stacklevel=4,
                )
        elif option == "telemetry":
            continue  # either way: plait has no telemetry to send
        else:
            raise DefinitionError(f"{where}: unknown option {option}=")
    return instructions, retries
