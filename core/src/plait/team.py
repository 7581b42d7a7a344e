"""Teams: member agents coordinated by a leader model.

Three modes:

* ``"route"``: the leader picks one member (structured output ``{"member": ...}``)
  and that member's answer is the team's answer;
* ``"coordinate"`` (default): the leader gets one tool per member
  (``ask_<member>(task)``), delegates subtasks through tool calls, and writes the
  final answer from what the members returned;
* ``"broadcast"``: every member answers the input concurrently, and the leader
  synthesizes their answers.

A team runs anywhere an agent does: ``team.run(...)``, ``Step(team=team)`` or
directly in ``steps=[team]``. With ``output_schema`` (a pydantic model class) the
team's answer is an instance of it.

Agno's flags pick the mode as Agno does: ``respond_directly=True`` is ``"route"``,
``delegate_to_all_members=True`` is ``"broadcast"``; ``determine_input_for_members=False``
(members get the input as it is) is what ``"route"`` and ``"broadcast"`` do.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from plait._agent_calls import completed_fields
from plait._agno_options import agent_extras
from plait._checks import check_model_string, check_number
from plait._history import agent_history
from plait._ids import new_id
from plait._io import format_content
from plait._runnable import STANDALONE, AgentRunOutput, Runnable, RunOptions
from plait.agent import Agent, Tool
from plait.errors import DefinitionError, PlaitError
from plait.events import TeamRunCompletedEvent, TeamRunErrorEvent, TeamRunEvent, TeamRunStartedEvent
from plait.models import Model, Usage
from plait.tracing import agent_span, resolve_tracer, span, usage_attributes

__all__ = ["Team", "TeamRunEvent"]

TeamMode = Literal["route", "coordinate", "broadcast"]

#: The run options of the team run a leader's delegation tool is serving.
_DELEGATION: contextvars.ContextVar[tuple[RunOptions, Usage, list[float | None]]] = contextvars.ContextVar(
    "plait_team_delegation"
)


class Team(Runnable):
    """A coordinated group of agents (or teams).

    >>> Team(name="Research Team", members=[hn_researcher, web_researcher], model="openai:gpt-4o")

    Without ``model=`` (as Agno allows) the leader runs on the model ``$PLAIT_MODEL`` names,
    read when a run starts (:func:`plait.models.default_model`). With ``stream_events=True``
    a run starts with a ``TeamRunStartedEvent`` and ends with a ``TeamRunCompletedEvent``
    (or ``TeamRunErrorEvent``); its members' runs have their own ``RunStarted`` events.
    """

    def __init__(
        self,
        name: str | None = None,
        members: Sequence[Runnable] = (),
        model: Model | str | Sequence[Model | str] | None = None,
        mode: TeamMode | None = None,
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        output_schema: type[Any] | None = None,
        max_tool_rounds: int = 10,
        tracer_provider: Any = None,
        respond_directly: bool | None = None,
        delegate_to_all_members: bool | None = None,
        determine_input_for_members: bool | None = None,
        history: bool | int | None = None,
        storage: Any = None,
        **agno_options: Any,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise DefinitionError(f"Team: name must be a non-empty string, got {name!r}")
        label = name or "Team"
        where = f"Team {label!r}"
        check_number(max_tool_rounds, where, "max_tool_rounds", integer=True)
        if isinstance(model, str) and ":" in model:  # the leader's: its error names the team
            check_model_string(model, where)
        mode = _team_mode(
            where,
            mode or "coordinate",
            explicit_mode=mode is not None,
            respond_directly=respond_directly,
            delegate_to_all_members=delegate_to_all_members,
            determine_input_for_members=determine_input_for_members,
        )
        if output_schema is not None and not (
            isinstance(output_schema, type) and hasattr(output_schema, "model_validate_json")
        ):
            raise DefinitionError(
                f"{where}: output_schema must be a pydantic model class, got {output_schema!r}"
            )
        # the team's conversation is its leader's (plait._history): history= and storage= go to it
        runs, kept = agent_history(where, history, storage, agno_options)
        extra_instructions, retries = agent_extras(
            where, agno_options, has_output_schema=output_schema is not None
        )
        if retries is not None:
            raise DefinitionError(
                f"{where}: retries= is Agno's option, not plait's: give the members retry=RetryPolicy(...), "
                "or the step that runs the team (Step(team=..., max_retries=N))"
            )
        members = list(members)
        if not members:
            raise DefinitionError(f"Team {label!r}: expected at least one member")
        for member in members:
            if not isinstance(member, Runnable):
                raise DefinitionError(f"Team {label!r}: members must be Agents or Teams, got {member!r}")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise DefinitionError(f"Team {label!r}: member names must be unique, got {names}")
        self.name = label
        self.id = label
        self.members = members
        self.mode: TeamMode = mode
        self.description = description
        self.output_schema: type[Any] | None = output_schema
        self._members = {m.name: m for m in members}
        if mode == "route" and output_schema is not None:
            # the routed member answers for the team, so it answers in the team's schema (as in
            # Agno); on a copy, so the agent given stays as it is elsewhere
            self._members = {m.name: _answering_in(m, output_schema) for m in members}
        roster = "\n".join(f"- {m.name}: {_describe(m)}" for m in members)
        base = [instructions] if isinstance(instructions, str) else list(instructions or [])
        if description:  # as an Agno team leader's system message starts
            base.insert(0, description)
        leader_instructions = [
            *base,
            *extra_instructions,
            f"You lead the team {label!r}. Its members:\n{roster}",
        ]
        tools: list[Tool] = []
        schema: Any = None
        if mode == "route":
            from pydantic import create_model

            choices = Literal[tuple(names)]  # type: ignore[valid-type]
            schema = create_model("RouteChoice", member=(choices, ...))  # type: ignore[call-overload,arg-type]
            leader_instructions.append("Choose the one member best suited to answer the request.")
        elif mode == "coordinate":
            tools = [self._delegate_tool(m) for m in members]
            leader_instructions.append(
                "Delegate subtasks to members with your tools, then write the final answer from their results."
            )
        else:
            leader_instructions.append(
                "Every member has answered the request; synthesize their answers into one."
            )
        if mode != "route":  # the leader writes the answer: in the team's schema
            schema = output_schema
        self.leader = Agent(
            name=f"{label} leader",
            model=model,
            instructions=leader_instructions,
            tools=tools,
            output_schema=schema,
            max_tool_rounds=max_tool_rounds,
            tracer_provider=tracer_provider,
            history=runs if runs is not None else False,
            storage=kept.spec,
        )
        self.leader._history = kept  # the team's history options, its storage and its name in errors
        self.history_runs = runs
        # without model=, the leader's model is $PLAIT_MODEL's when a run starts (as an agent's)
        self.leader._what = where
        self.leader._run_events = False  # the team's own events say when it starts and ends
        self.tracer_provider = tracer_provider
        self._last_run_output: AgentRunOutput | None = None

    def __repr__(self) -> str:
        return f"Team({self.name!r}, mode={self.mode!r})"

    def _conversation(self) -> tuple[Any, str]:
        return self.leader._conversation()

    def _delegate_tool(self, member: Runnable) -> Tool:
        async def delegate(task: str) -> str:
            options, usage, costs = _DELEGATION.get()
            result = await member.invoke(task, options)
            usage.add(result.usage)
            costs.append(result.cost)
            return format_content(result.content)

        slug = "".join(c if c.isalnum() else "_" for c in member.name.lower()).strip("_")
        return Tool(
            delegate, name=f"ask_{slug}", description=f"Ask {member.name} ({_describe(member)}) to do a task."
        )

    async def invoke(self, input: Any, options: RunOptions = STANDALONE) -> AgentRunOutput:
        tracer = options.tracer if options.tracer is not None else resolve_tracer(self.tracer_provider)
        options = replace(options, tracer=tracer)
        run_id = new_id()
        usage = Usage()
        costs: list[float | None] = []
        started = time.perf_counter()
        leader_model = self.leader.model
        emit = options.emit if options.step_events else None
        if emit is not None:
            event = options.make_event or (lambda cls, **fields: cls(run_id=run_id, **fields))
            place = {"team_id": self.id, "team_name": self.name, "team_run_id": run_id}
            emit(
                event(
                    TeamRunStartedEvent,
                    **place,
                    model=leader_model.name,
                    model_provider=leader_model.provider,
                )
            )
        # the leader's model: it answers for the team
        span_name, attributes = agent_span(self.name, leader_model, team_mode=self.mode)
        try:
            with span(tracer, span_name, attributes) as current:
                content = await self._dispatch(input, options, usage, costs)
                if current is not None:
                    current.set_attributes(usage_attributes(usage))
        except Exception as exc:
            if emit is not None:
                emit(event(TeamRunErrorEvent, **place, error=str(exc), error_type=type(exc).__name__))
            raise
        result = AgentRunOutput(
            content=content,
            agent_name=self.name,
            run_id=run_id,
            model=leader_model.name,
            usage=usage,
            duration=time.perf_counter() - started,
            cost=sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None,
        )
        if emit is not None:
            emit(event(TeamRunCompletedEvent, **place, **completed_fields(result)))
        self._last_run_output = result
        return result

    async def _dispatch(
        self, input: Any, options: RunOptions, usage: Usage, costs: list[float | None]
    ) -> Any:
        """Run the team's mode; every agent run adds its usage and cost to the totals."""

        def count(result: AgentRunOutput) -> AgentRunOutput:
            usage.add(result.usage)
            costs.append(result.cost)
            return result

        if self.mode == "route":
            choice = count(await self.leader.invoke(input, options))
            member = self._members.get(str(getattr(choice.content, "member", "")))
            if member is None:
                raise PlaitError(f"Team {self.name!r}: the leader chose {choice.content!r}, not a member")
            return self._structured(count(await member.invoke(input, options)).content, member)
        if self.mode == "broadcast":
            answers = [
                count(a) for a in await asyncio.gather(*(m.invoke(input, options) for m in self.members))
            ]
            sections = "\n\n".join(f"## {a.agent_name}\n{format_content(a.content)}" for a in answers)
            request = f"Request:\n{format_content(input)}\n\nMember answers:\n{sections}"
            return count(await self.leader.invoke(request, options)).content
        token = _DELEGATION.set((options, usage, costs))
        try:
            final = count(await self.leader.invoke(input, options))
        finally:
            _DELEGATION.reset(token)
        return final.content

    def _structured(self, content: Any, member: Runnable) -> Any:
        """A routed member's answer as the team's ``output_schema`` (the member answers directly)."""
        schema = self.output_schema
        if schema is None or isinstance(content, schema):
            return content
        try:
            if isinstance(content, str):
                return schema.model_validate_json(content.strip().removeprefix("```json").strip("`\n "))
            data = content.model_dump() if hasattr(content, "model_dump") else content
            return schema.model_validate(data)
        except ValueError as exc:
            raise PlaitError(
                f"Team {self.name!r}: member {member.name!r} answered directly (mode='route'), and its answer "
                f"does not match output_schema={schema.__name__}: {exc}. Give the member "
                f"output_schema={schema.__name__} too"
            ) from exc


def _answering_in(member: Runnable, schema: type[Any]) -> Runnable:
    """An agent without an output schema as a copy that answers in ``schema``; others as they are."""
    if isinstance(member, Agent) and member.output_schema is None:
        answering = copy.copy(member)
        answering.output_schema = schema
        return answering
    return member


def _team_mode(
    where: str,
    mode: Any,
    *,
    explicit_mode: bool,
    respond_directly: bool | None,
    delegate_to_all_members: bool | None,
    determine_input_for_members: bool | None,
) -> TeamMode:
    """plait's mode from ``mode=`` and Agno's flags, as Agno resolves them: an explicit mode
    wins, else ``respond_directly`` means ``"route"`` and ``delegate_to_all_members``
    ``"broadcast"``. A flag that contradicts the mode is an error, not ignored."""
    mode = getattr(mode, "value", mode)  # Agno's TeamMode enum
    if mode == "tasks":
        raise DefinitionError(
            f"{where}: plait has no mode='tasks': write the task loop as a workflow (Loop(steps=[team], ...))"
        )
    if mode not in ("route", "coordinate", "broadcast"):
        raise DefinitionError(f"{where}: mode must be 'route', 'coordinate' or 'broadcast', got {mode!r}")
    if respond_directly and delegate_to_all_members:
        raise DefinitionError(
            f"{where}: respond_directly=True and delegate_to_all_members=True do not combine: give "
            "mode='route' (one member answers directly) or mode='broadcast' (every member answers, the leader merges)"
        )
    flagged = "route" if respond_directly else "broadcast" if delegate_to_all_members else None
    if flagged is not None:
        flag = "respond_directly" if respond_directly else "delegate_to_all_members"
        if explicit_mode and mode != flagged:
            raise DefinitionError(
                f"{where}: {flag}=True is mode={flagged!r}, which contradicts mode={mode!r}"
            )
        mode = flagged
    if determine_input_for_members is not None:
        if not isinstance(determine_input_for_members, bool):
            raise DefinitionError(
                f"{where}: determine_input_for_members must be True or False, got {determine_input_for_members!r}"
            )
        if determine_input_for_members is False and mode == "coordinate":
            raise DefinitionError(
                f"{where}: determine_input_for_members=False (members get the input as it is) is plait's "
                "mode='route' (one member) or mode='broadcast' (every member); in mode='coordinate' the leader "
                "writes each member's task"
            )
        if determine_input_for_members is True and mode != "coordinate":
            raise DefinitionError(
                f"{where}: in mode={mode!r} members get the input as it is; for tasks the leader writes "
                "(determine_input_for_members=True), use mode='coordinate'"
            )
    return mode  # type: ignore[no-any-return]


def _describe(member: Runnable) -> str:
    description = getattr(member, "description", None) or getattr(member, "role", None)
    if description:
        return str(description)
    instructions = getattr(member, "instructions", None)
    if instructions:
        return str(instructions[0])[:200]
    return "a team member"
