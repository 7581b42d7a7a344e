"""Budgets that pause for a person (``Budget(on_exceeded="pause")``) and budgets that outlive a pause.

A run with storage has a :class:`BudgetLedger` (a context variable, set by :mod:`plait._runs`
for the run). Every meter opened inside the run (the workflow's, a step's, an agent's) is listed
in it under a key saying where it was opened (the step id and whose budget it is), so that:

* the run record keeps what each meter spent (``metrics["budget"]``), written whenever the run
  ends, pauses or fails; a resumed run's meters start from there, never from a fresh budget;
* a call that would cross a hard limit of a pausing budget stops its step with
  :class:`~plait._pause.PauseRequested` and a ``PendingInput(kind="confirm", budget={...})``
  saying what was spent, the limit and what the call needs; the run is stored as paused;
* ``continue_run(run_id, approve=True, budget=Budget(...))`` puts the new budget on the meters
  that paused (kept with the run from then on); ``approve=True`` alone lets each paused call
  through once; ``approve=False`` fails the run with BudgetExceededError at the same call.

A run without storage has no ledger: a pausing budget there is an error when its meter opens.
"""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait._context import current_step
from plait._pause import PauseRequested, PendingInput, yes_or_no
from plait.errors import BudgetExceededError, DefinitionError
from plait.events import StepPausedEvent
from plait.tracing import add_current_span_event

if TYPE_CHECKING:
    from plait._budget import Budget, BudgetMeter
    from plait.storage import RunRecord

__all__ = ["LEDGER", "BudgetDecision", "BudgetLedger", "budget_decision", "ledger_scope"]

#: the ledger of the stored run in progress here; None outside one
LEDGER: contextvars.ContextVar[BudgetLedger | None] = contextvars.ContextVar(
    "plait_budget_ledger", default=None
)


@dataclass(slots=True)
class BudgetDecision:
    """What ``continue_run`` said about a run's budget pauses."""

    #: meter key -> the budget it runs under from now on
    overrides: dict[str, Budget] = field(default_factory=dict)
    #: step ids whose paused call may go through once (approve=True without budget=)
    grants: set[str] = field(default_factory=set)
    #: step ids whose paused call fails the run (approve=False)
    denied: set[str] = field(default_factory=set)


def budget_to_json(budget: Budget) -> dict[str, Any]:
    """A budget as JSON: its limits, ``soft`` and ``on_exceeded``."""
    return {**budget.limits(), "soft": budget.soft, "on_exceeded": budget.on_exceeded}


class BudgetLedger:
    """The meters of one stored run, what they spent before (a resumed run) and what a person decided."""

    __slots__ = ("_lock", "decision", "meters", "stored")

    def __init__(self, stored: dict[str, Any] | None, decision: BudgetDecision | None = None) -> None:
        #: meter key -> what the meter spent by the end of the earlier attempt (to_json's form)
        self.stored: dict[str, Any] = dict(stored or {})
        self.decision = decision or BudgetDecision()
        self.meters: dict[str, BudgetMeter] = {}
        self._lock = threading.Lock()

    def open(self, meter: BudgetMeter) -> BudgetMeter:
        """``meter``, just made here, listed and carrying on from the earlier attempt's spend
        (under the budget a person raised, if one did)."""
        ctx = current_step()
        with self._lock:
            key = base = f"{ctx.step_id if ctx is not None else ''}#{meter.owner}"
            count = 1
            while key in self.meters:  # the same agent run twice in one step: in order
                count += 1
                key = f"{base}#{count}"
            stored = self.stored.get(key) or {}
            override = self.decision.overrides.get(key)
            if override is not None:
                meter.budget = override
            elif stored.get("raised"):  # a budget a person raised earlier stays raised
                meter.budget = type(meter.budget)(**stored["budget"])
            meter.key = key
            meter.ledger = self
            meter.raised = override is not None or bool(stored.get("raised"))
            for name, value in (stored.get("used") or {}).items():
                if name in meter.used:
                    meter.used[name] = value
            self.meters[key] = meter
        return meter

    def stop(
        self, meter: BudgetMeter, crossing: tuple[str, float, float, float], message: str
    ) -> BaseException | None:
        """What a call that would cross a hard limit of a pausing ``meter`` meets: None (a person
        let it through once), BudgetExceededError (a person said no) or PauseRequested."""
        name, limit, spent, need = crossing
        ctx = current_step()
        step_id = ctx.step_id if ctx is not None else ""
        decision = self.decision
        with self._lock:
            if step_id in decision.grants:
                decision.grants.discard(step_id)
                return None
            denied = step_id in decision.denied
        error = BudgetExceededError(
            message + (" (a person rejected going on)" if denied else ""),
            limit=name,
            maximum=limit,
            used=spent,
            needed=need,
            budget_of=meter.owner,
            budget=meter.budget,
            step_path=step_id,
            step_name=ctx.step_name if ctx is not None else "",
        )
        if denied or ctx is None:
            return error
        prompt = (
            f"{message}; go on? (approve to let this call through once, or raise the budget: "
            "continue_run(run_id, approve=True, budget=Budget(...)))"
        )
        info = {
            "key": meter.key,
            "budget_of": meter.owner,
            "limit": name,
            "maximum": limit,
            "used": spent,
            "needed": need,
            "budget": budget_to_json(meter.budget),
        }
        if ctx.run.step_events:
            ctx.emit(ctx.event(StepPausedEvent, prompt=prompt))
        add_current_span_event(
            "budget.paused",
            {
                "plait.budget.of": meter.owner,
                "plait.budget.limit": name,
                "plait.budget.maximum": limit,
                "plait.budget.used": spent,
                "plait.budget.needed": need,
            },
        )
        return PauseRequested([PendingInput(step_id, ctx.step_name, "confirm", prompt, budget=info)])

    def to_json(self) -> dict[str, Any]:
        """What every meter of the run spent, and the budget it was under: the earlier attempts'
        meters that this attempt did not open again (restored steps) kept as they were."""
        meters = dict(self.stored)
        with self._lock:
            opened = list(self.meters.items())
        for key, meter in opened:
            left = meter.snapshot()[2]
            meters[key] = {
                "owner": meter.owner,
                "budget": budget_to_json(meter.budget),
                "raised": meter.raised,
                "used": {name: value for name, value in dict(meter.used).items() if value},
                "left": left,
            }
        return meters


def ledger_scope(ledger: BudgetLedger) -> contextvars.Token[BudgetLedger | None]:
    """Put ``ledger`` in force for the stored run (reset with ``LEDGER.reset(token)``)."""
    return LEDGER.set(ledger)


def budget_decision(
    record: RunRecord, answers: dict[str, Any] | None, approve: bool | None, budget: Budget | None
) -> tuple[dict[str, Any] | None, BudgetDecision | None]:
    """The answers left for Approval steps, and what the caller decided about the budget pauses
    of ``record`` (None when it waits on none); ``budget=`` (a checked Budget) on a run not
    paused on a budget is an error."""
    pending = [PendingInput.from_dict(p) for p in (record.pause or {}).get("pending", [])]
    paused = [p for p in pending if p.budget is not None]
    if budget is not None:
        if not paused:
            waits = ", ".join(p.step_id for p in pending)
            raise DefinitionError(
                f"continue_run(budget=...): run {record.run_id!r} is not paused on a budget (it is "
                f"{record.status}" + (f", waiting at {waits} for an answer" if waits else "") + "); "
                "budget= raises the limit of a run paused by Budget(on_exceeded='pause')"
            )
        if approve is False:
            raise DefinitionError(
                "continue_run(approve=False, budget=...): a raised budget goes with approve=True; "
                "approve=False fails the run with BudgetExceededError"
            )
    if not paused:
        return answers, None
    decision = BudgetDecision()
    left = dict(answers or {})
    for request in paused:
        given: Any = approve if approve is not None else (True if budget is not None else None)
        for key in (request.step_id, request.step_name):
            if key in left:
                given = _yes_or_no(left.pop(key), request.step_id)
        if given is None:
            continue  # not answered: it pauses again at the same call
        if not given:
            decision.denied.add(request.step_id)
        elif budget is not None:
            assert request.budget is not None
            decision.overrides[request.budget["key"]] = budget
        else:
            decision.grants.add(request.step_id)
    return left, decision


def _yes_or_no(answer: Any, step_id: str) -> bool:
    confirmed = yes_or_no(answer)
    if confirmed is not None:
        return confirmed
    raise DefinitionError(f"budget pause at {step_id!r}: expected yes or no (True/False), got {answer!r}")
