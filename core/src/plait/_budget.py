"""Budgets: limits on what a run, a step or an agent may spend, enforced before each call.

A :class:`Budget` is declared on a workflow (``Workflow(budget=...)``: every agent, team,
tool and nested workflow inside one run counts, parallel branches included), on a step
(``Step(budget=...)``) or on an agent (``Agent(budget=...)``: each of its runs). Each run of
the thing that declares it gets a :class:`BudgetMeter`; the meters in force are a context
variable, so every model call inside (in any branch, task or worker thread that copied the
context) sees them. Each call reserves what it needs under the meter's lock and settles it
with what the provider reported, so concurrent branches cannot both take the last request.

Nothing here runs unless a budget is declared: the agent asks :func:`active_meters` once
per run, and gets None.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from plait._checks import check_number
from plait._context import current_step
from plait._defaults import BUDGET_LIMITS as LIMITS
from plait._limits import estimate_input_tokens
from plait._public import publish as _publish
from plait.errors import BudgetExceededError, DefinitionError
from plait.events import BudgetUpdatedEvent, BudgetWarningEvent, Event
from plait.models import Model, ModelRequest, ModelResponse, model_pricing
from plait.tracing import annotate_current_span, budget_attributes

__all__ = [
    "Budget",
    "BudgetMeter",
    "Reservation",
    "RunBudgets",
    "active_meters",
    "budget_scope",
    "check_budget",
    "estimate_input_tokens",
    "open_meter",
]


@dataclass(frozen=True, slots=True)
class Budget:
    """What a workflow run, a step or an agent run may spend; checked before every call.

    >>> Workflow(name="Research", steps=[...], budget=Budget(max_requests=20, max_cost=0.50))
    >>> Step(name="write", agent=writer, budget=Budget(max_total_tokens=20_000))
    >>> Agent(name="Writer", model="openai:gpt-4o-mini", budget=Budget(max_requests=5))

    ``max_requests`` counts model calls (a call retried after a rate limit, or passed on by a
    :class:`~plait.models.FallbackModel`, counts once); ``max_tool_calls`` tool calls;
    ``max_input_tokens``, ``max_output_tokens`` and ``max_total_tokens`` the tokens the
    providers report; ``max_cost`` the cost by each model's price (its ``Pricing``, or the
    price table: :mod:`plait.prices`), in the price's currency.

    Before each call plait adds what the call needs to what was used: one request; the
    request's input tokens, estimated as a quarter of the characters of its messages, tool
    definitions and output schema (rounded up), with no output; for ``max_cost`` that
    estimate at the model's input price. A call that would cross a limit is not made: the run
    stops with :class:`~plait.errors.BudgetExceededError` naming the limit, what was used and
    the step. Output tokens cannot be known before the answer, so ``max_output_tokens``
    stops the first call after the limit is reached. With ``soft=True`` nothing stops: a
    ``BudgetWarningEvent`` is emitted once per limit instead. With ``on_exceeded="pause"``
    (a workflow run with storage) the run pauses for a person before that call instead of
    failing, saying what was spent, the limit and what the call needs;
    ``workflow.continue_run(run_id, approve=True, budget=Budget(...))`` raises the limit and
    goes on (``approve=True`` alone lets the paused call through once, ``approve=False``
    fails the run with the error). What was spent before the pause still counts.

    ``max_cost`` needs a price for every model it meters: a model without one is an error
    (:class:`~plait.errors.DefinitionError`) when the agent is built with it, or when a run
    first resolves it, never a limit that silently does not apply.
    """

    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_total_tokens: int | None = None
    max_cost: float | None = None
    max_requests: int | None = None
    max_tool_calls: int | None = None
    soft: bool = False
    on_exceeded: Literal["fail", "pause"] = "fail"

    def __post_init__(self) -> None:
        for name in LIMITS:
            value = getattr(self, name)
            if value is not None:
                check_number(value, "Budget", name, integer=name != "max_cost")
        if all(getattr(self, name) is None for name in LIMITS):
            raise DefinitionError(
                f"Budget: expected at least one limit ({', '.join(f'{n}=' for n in LIMITS)}), got none"
            )
        if not isinstance(self.soft, bool):
            raise DefinitionError(f"Budget: soft must be True or False, got {self.soft!r}")
        if self.on_exceeded not in ("fail", "pause"):
            raise DefinitionError(f"Budget: on_exceeded must be 'fail' or 'pause', got {self.on_exceeded!r}")
        if self.soft and self.on_exceeded == "pause":
            raise DefinitionError("Budget: soft=True never stops a run, so on_exceeded='pause' cannot apply")

    def limits(self) -> dict[str, float]:
        """The limits set, by name."""
        return {name: getattr(self, name) for name in LIMITS if getattr(self, name) is not None}


def check_budget(budget: Any, where: str) -> Budget | None:
    """``budget`` when it is a :class:`Budget` or None; else an error naming ``where``."""
    if budget is None or isinstance(budget, Budget):
        return budget
    raise DefinitionError(
        f"{where}: budget must be a Budget(max_requests=..., max_total_tokens=..., max_cost=...), got {budget!r}"
    )


@dataclass(slots=True)
class Reservation:
    """What one call reserved on one meter: released when the call settles."""

    meter: BudgetMeter
    requests: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    cost: float = 0.0


class BudgetMeter:
    """What one run of a workflow, step or agent has spent against its :class:`Budget`."""

    __slots__ = ("_lock", "budget", "key", "ledger", "owner", "raised", "reserved", "used", "warned")

    def __init__(self, budget: Budget, owner: str) -> None:
        self.budget = budget
        self.owner = owner
        #: a stored run's meters: where it was opened, its run's ledger (plait._budget_pause),
        #: and whether a person raised its budget
        self.key = ""
        self.ledger: Any = None
        self.raised = False
        self._lock = threading.Lock()
        self.used: dict[str, float] = dict.fromkeys(LIMITS, 0)
        self.reserved: dict[str, float] = dict.fromkeys(LIMITS, 0)
        self.warned: set[str] = set()

    def left(self) -> dict[str, float]:
        """What is left of each limit set (never below zero)."""
        return {name: max(0, limit - self.used[name]) for name, limit in self.budget.limits().items()}

    def _crossing(self, needs: dict[str, float]) -> tuple[str, float, float, float] | None:
        """The first limit that used + reserved + ``needs`` would cross: (name, max, used, needed)."""
        budget = self.budget
        for name in LIMITS:
            limit = getattr(budget, name)
            if limit is None:
                continue
            spent = self.used[name] + self.reserved[name]
            need = needs.get(name, 0)
            if name == "max_output_tokens":
                if spent >= limit:  # the answer's size is unknown: stop once it is reached
                    return name, limit, spent, need
            elif need and spent + need > limit:
                return name, limit, spent, need
        return None

    def reserve(
        self, needs: dict[str, float], where: str, step_path: str, warn: Callable[..., None] | None
    ) -> Reservation:
        """Reserve ``needs`` (by limit name) or raise :class:`BudgetExceededError`; a soft
        budget warns (once per limit) and reserves anyway."""
        first = False
        stop: BaseException | None = None
        with self._lock:
            crossing = self._crossing(needs)
            if crossing is not None:
                name, limit, spent, need = crossing
                message = (
                    f"{where}: the budget of {self.owner} would be exceeded: {name}={_show(limit)}, "
                    f"{_show(spent)} used, the next call needs {_show(need)}"
                    + (" (estimated)" if name in ("max_input_tokens", "max_total_tokens", "max_cost") else "")
                    + (f" (step {step_path!r})" if step_path else "")
                )
                if self.budget.on_exceeded == "pause" and self.ledger is not None:
                    stop = self.ledger.stop(self, crossing, message)  # None: a person let it through
                elif not self.budget.soft:
                    raise BudgetExceededError(
                        message,
                        limit=name,
                        maximum=limit,
                        used=spent,
                        needed=need,
                        budget_of=self.owner,
                        budget=self.budget,
                        step_path=step_path,
                    )
                first = self.budget.soft and name not in self.warned
                self.warned.add(name)
            if stop is None:
                for name, need in needs.items():
                    self.reserved[name] += need
        if stop is not None:
            raise stop
        if crossing is not None and first and warn is not None:
            warn(self, crossing, message)
        return Reservation(
            self,
            requests=int(needs.get("max_requests", 0)),
            tool_calls=int(needs.get("max_tool_calls", 0)),
            input_tokens=int(needs.get("max_input_tokens", 0)),
            cost=float(needs.get("max_cost", 0)),
        )

    def release(self, reservation: Reservation) -> None:
        """Give back a reservation whose call was never made."""
        with self._lock:
            self._unreserve(reservation)

    def _unreserve(self, reservation: Reservation) -> None:
        reserved = self.reserved
        reserved["max_requests"] -= reservation.requests
        reserved["max_tool_calls"] -= reservation.tool_calls
        reserved["max_input_tokens"] -= reservation.input_tokens
        reserved["max_total_tokens"] -= reservation.input_tokens
        reserved["max_cost"] -= reservation.cost

    def settle(self, reservation: Reservation, usage: Any | None) -> None:
        """Replace a reservation by what the call used (``usage``: a :class:`plait.models.Usage`,
        or None when the call failed: its request still counts, its tokens do not)."""
        with self._lock:
            self._unreserve(reservation)
            used = self.used
            used["max_requests"] += reservation.requests
            used["max_tool_calls"] += reservation.tool_calls
            if usage is not None:
                used["max_input_tokens"] += usage.input_tokens
                used["max_output_tokens"] += usage.output_tokens
                used["max_total_tokens"] += usage.input_tokens + usage.output_tokens
                if usage.cost is not None:
                    used["max_cost"] += usage.cost

    def snapshot(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """(limits, used, left), the limits set only."""
        limits = self.budget.limits()
        with self._lock:
            used = {name: self.used[name] for name in limits}
        return limits, used, {name: max(0, limits[name] - used[name]) for name in limits}


def _show(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_METERS: contextvars.ContextVar[tuple[BudgetMeter, ...]] = contextvars.ContextVar("plait_budgets", default=())


def active_meters(own: BudgetMeter | None = None) -> tuple[BudgetMeter, ...] | None:
    """The meters in force here (outermost first), with ``own`` last; None when there are none."""
    meters = _METERS.get()
    if own is not None:
        meters = (*meters, own)
    return meters or None


@contextlib.contextmanager
def budget_scope(budget: Budget, owner: str) -> Iterator[BudgetMeter]:
    """A fresh meter for ``budget`` in force for the block (and every task it starts); in a
    stored run it carries on from what the run spent before a pause (plait._budget_pause)."""
    meter = open_meter(budget, owner)
    token = _METERS.set((*_METERS.get(), meter))
    try:
        yield meter
    finally:
        _METERS.reset(token)


def open_meter(budget: Budget, owner: str) -> BudgetMeter:
    """A meter for one run of what declares ``budget``; in a stored run, listed in its ledger
    and carrying on from what it spent before a pause (plait._budget_pause)."""
    from plait._budget_pause import LEDGER

    ledger = LEDGER.get()
    if ledger is not None:
        return ledger.open(BudgetMeter(budget, owner))
    if budget.on_exceeded == "pause":
        raise DefinitionError(
            f"the budget of {owner}: on_exceeded='pause' needs a workflow run with storage, to pause in "
            "(Workflow(storage='sqlite:///runs.db')); without one, use on_exceeded='fail'"
        )
    return BudgetMeter(budget, owner)


def require_price(model: Model, budget: Budget | None, where: str) -> None:
    """``max_cost`` on ``model`` without a price is an error, not a limit that never applies."""
    if budget is not None and budget.max_cost is not None and model_pricing(model) is None:
        raise DefinitionError(
            f"{where}: Budget(max_cost={budget.max_cost:g}) needs the price of {model.name}, which is "
            "unknown: give the model pricing=Pricing(input=..., output=...) (per million tokens), "
            "install the price table (pip install 'plait[prices]'), or drop max_cost"
        )


class RunBudgets:
    """The meters one agent run counts against, and how it reports them (events, spans)."""

    __slots__ = ("agent_name", "emit", "event", "live_calls", "meters", "priced")

    def __init__(
        self,
        meters: tuple[BudgetMeter, ...],
        agent_name: str,
        emit: Callable[[Event], None] | None,
        event: Callable[..., Event],
    ) -> None:
        self.meters = meters
        self.agent_name = agent_name
        self.emit = emit
        self.event = event
        #: models whose price (for max_cost) was already checked in this run
        self.priced: dict[int, float] = {}
        #: the model calls made live (a resumed step's recorded calls are answered, not counted)
        self.live_calls = 0

    def _where(self) -> tuple[str, str]:
        ctx = current_step()
        step_path = ctx.step_id if ctx is not None else ""
        return f"Agent {self.agent_name!r}", step_path

    def _input_price(self, model: Model) -> float:
        price = self.priced.get(id(model))
        if price is None:
            for meter in self.meters:
                require_price(model, meter.budget, f"Agent {self.agent_name!r} ({meter.owner})")
            pricing = model_pricing(model)
            price = self.priced[id(model)] = 0.0 if pricing is None else pricing.input
        return price

    def _warn(self, meter: BudgetMeter, crossing: tuple[str, float, float, float], message: str) -> None:
        if self.emit is not None:
            name, limit, spent, need = crossing
            self.emit(
                self.event(
                    BudgetWarningEvent,
                    agent_name=self.agent_name,
                    budget_of=meter.owner,
                    limit=name,
                    maximum=limit,
                    used=spent,
                    needed=need,
                    message=message,
                )
            )

    def _reserve(self, needs: dict[str, float]) -> list[Reservation]:
        where, step_path = self._where()
        reservations: list[Reservation] = []
        try:
            for meter in self.meters:
                reservations.append(meter.reserve(needs, where, step_path, self._warn))
        except BaseException:
            for reservation in reservations:  # a call stopped by an inner budget takes nothing
                reservation.meter.release(reservation)
            raise
        return reservations

    async def call(self, model: Model, request: ModelRequest, call: Callable[[], Any]) -> ModelResponse:
        """Reserve what the call needs on every meter (or stop), make it, settle what it used."""
        tokens = estimate_input_tokens(request)
        needs: dict[str, float] = {"max_requests": 1, "max_input_tokens": tokens, "max_total_tokens": tokens}
        if any(m.budget.max_cost is not None for m in self.meters):
            needs["max_cost"] = tokens * self._input_price(model) / 1_000_000
        reservations = self._reserve(needs)
        self.live_calls += 1
        try:
            response: ModelResponse = await call()
        except BaseException:
            for reservation in reservations:
                reservation.meter.settle(reservation, None)
            raise
        for reservation in reservations:
            reservation.meter.settle(reservation, response.usage)
        self._report()
        return response

    def tools(self, count: int) -> None:
        """Count ``count`` tool calls about to start (or stop before them)."""
        for reservation in self._reserve({"max_tool_calls": count}):
            reservation.meter.settle(reservation, None)
        self._report()

    def _report(self) -> None:
        tightest: dict[str, float] = {}
        limits_all: dict[str, float] = {}
        for meter in self.meters:
            limits, used, left = meter.snapshot()
            for name, value in left.items():
                if name not in tightest or value < tightest[name]:
                    tightest[name] = value
                    limits_all[name] = limits[name]
            if self.emit is not None:
                self.emit(
                    self.event(
                        BudgetUpdatedEvent,
                        agent_name=self.agent_name,
                        budget_of=meter.owner,
                        limits=limits,
                        used=used,
                        left=left,
                    )
                )
        annotate_current_span(budget_attributes(limits_all, tightest))


# Last: the names plait exports report ``plait`` as their home (plait._public).
_publish(__name__, globals())
