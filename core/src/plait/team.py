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
directly in ``steps=[team]``.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Sequence
from typing import Any, Literal

from plait._checks import check_number
from plait._ids import new_id
from plait._io import format_content
from plait._runnable import STANDALONE, AgentRunOutput, Runnable, RunOptions
from plait.agent import Agent, Tool
from plait.errors import DefinitionError, PlaitError
from plait.models import Model, Usage
from plait.tracing import agent_span, resolve_tracer, span, usage_attributes

__all__ = ["Team"]

TeamMode = Literal["route", "coordinate", "broadcast"]

#: The run options of the team run a leader's delegation tool is serving.
_DELEGATION: contextvars.ContextVar[tuple[RunOptions, Usage, list[float | None]]] = contextvars.ContextVar(
    "plait_team_delegation"
)


class Team(Runnable):
    """A coordinated group of agents (or teams).

    >>> Team(name="Research Team", members=[hn_researcher, web_researcher], model="openai:gpt-4o")
    """

    def __init__(
        self,
        name: str | None = None,
        members: Sequence[Runnable] = (),
        model: Model | str | None = None,
        mode: TeamMode = "coordinate",
        instructions: str | Sequence[str] | None = None,
        *,
        description: str | None = None,
        max_tool_rounds: int = 10,
        tracer_provider: Any = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise DefinitionError(f"Team: name must be a non-empty string, got {name!r}")
        label = name or "Team"
        check_number(max_tool_rounds, f"Team {label!r}", "max_tool_rounds", integer=True)
        if mode not in ("route", "coordinate", "broadcast"):
            raise DefinitionError(
                f"Team {label!r}: mode must be 'route', 'coordinate' or 'broadcast', got {mode!r}"
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
        if model is None:
            raise DefinitionError(f"Team {label!r}: expected model= for the team leader")
        self.name = label
        self.id = label
        self.members = members
        self.mode: TeamMode = mode
        self.description = description
        self._members = {m.name: m for m in members}
        roster = "\n".join(f"- {m.name}: {_describe(m)}" for m in members)
        base = [instructions] if isinstance(instructions, str) else list(instructions or [])
        leader_instructions = [*base, f"You lead the team {label!r}. Its members:\n{roster}"]
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
        self.leader = Agent(
            name=f"{label} leader",
            model=model,
            instructions=leader_instructions,
            tools=tools,
            output_schema=schema,
            max_tool_rounds=max_tool_rounds,
            tracer_provider=tracer_provider,
        )
        self.tracer_provider = tracer_provider
        self._last_run_output: AgentRunOutput | None = None

    def __repr__(self) -> str:
        return f"Team({self.name!r}, mode={self.mode!r})"

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
        options = RunOptions(options.emit, options.make_event, options.run_blocking, tracer)
        usage = Usage()
        costs: list[float | None] = []
        started = time.perf_counter()
        leader_model = self.leader.model
        # the leader's model: it answers for the team
        span_name, attributes = agent_span(self.name, leader_model, team_mode=self.mode)
        with span(tracer, span_name, attributes) as current:
            content = await self._dispatch(input, options, usage, costs)
            if current is not None:
                current.set_attributes(usage_attributes(usage))
        result = AgentRunOutput(
            content=content,
            agent_name=self.name,
            run_id=new_id(),
            model=self.leader.model.name,
            usage=usage,
            duration=time.perf_counter() - started,
            cost=sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None,
        )
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
            return count(await member.invoke(input, options)).content
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


def _describe(member: Runnable) -> str:
    description = getattr(member, "description", None) or getattr(member, "role", None)
    if description:
        return str(description)
    instructions = getattr(member, "instructions", None)
    if instructions:
        return str(instructions[0])[:200]
    return "a team member"
