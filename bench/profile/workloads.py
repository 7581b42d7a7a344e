"""The per-run costs of issue #13 item 6, as workloads small enough to count instructions of.

    python bench/profile/workloads.py WORKLOAD N

builds WORKLOAD, runs it once (warm-up: plugins loaded, caches filled), then N more units of
it, and checks the result. A unit is:

- ``plain``: the one-step workload's step function called directly (plain Python);
- ``one_step``: one ``run()`` of a workflow with one sync function step;
- ``loop``: one iteration of a Loop (one run of N iterations);
- ``nested1`` / ``nested3``: one ``run()`` of a one-step workflow nested 1 / 3 levels deep
  (``Workflow(steps=[Step(workflow=inner)])`` per level): a nesting level costs
  ``(nested3 - nested1) / 2``;
- ``stream``: one token chunk that a generator step yields inside a nested workflow, through
  the outer ``run(stream=True)`` (one run of N chunks);
- ``first_run``: nothing after the warm-up (N is ignored): the import and the first run.

``count.py`` runs this under callgrind for two values of N and reports the instructions per
unit; ``hot.py`` shows where the time of a workload goes (cProfile).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def build(workload: str) -> Callable[[int], Any]:
    """A function that runs ``n`` units of ``workload`` after one warm-up unit."""
    from plait import Loop, Step, StepOutput, Workflow

    def add_one(step_input: Any) -> Any:
        previous = step_input.previous_step_content
        return StepOutput(content=(step_input.input if previous is None else previous) + 1)

    if workload == "plain":
        from plait import StepInput

        def plain(n: int) -> Any:
            for _ in range(n):
                result = add_one(StepInput(0))
            assert result.content == 1
            return result

        return plain

    if workload in ("one_step", "first_run"):
        wf = Workflow(name="one", steps=[Step(name="s", executor=add_one)])

        def one_step(n: int) -> Any:
            for _ in range(n):
                result = wf.run(0)
            assert result.content == 1, result
            return result

        return one_step

    if workload == "loop":
        count = [0]

        def loop(n: int) -> Any:
            wf = Workflow(
                name="loop",
                steps=[
                    Loop(
                        name="loop",
                        steps=[Step(name="inc", executor=add_one)],
                        end_condition=lambda outputs: outputs[-1].content >= n,
                        max_iterations=max(n, 1),
                        forward_iteration_output=True,
                    )
                ],
            )
            count[0] += 1
            result = wf.run(0)
            assert result.content == max(n, 1), result
            return result

        return loop

    if workload.startswith("nested"):
        depth = int(workload[len("nested") :])
        wf = Workflow(name="level0", steps=[Step(name="s", executor=add_one)])
        for level in range(1, depth + 1):
            wf = Workflow(name=f"level{level}", steps=[Step(name="inner", workflow=wf)])

        def nested(n: int) -> Any:
            for _ in range(n):
                result = wf.run(0)
            assert result.content == 1, result
            return result

        return nested

    if workload == "stream":
        size = [0]

        def tokens(step_input: Any) -> Any:
            for _ in range(size[0]):
                yield "x"

        inner = Workflow(name="inner", steps=[Step(name="tokens", executor=tokens)])
        outer = Workflow(name="outer", steps=[Step(name="inner", workflow=inner)])

        def stream(n: int) -> Any:
            size[0] = max(n, 1)
            chunks = sum(1 for event in outer.run(0, stream=True) if event.event == "RunContent")
            assert chunks == size[0], chunks
            return chunks

        return stream

    raise SystemExit(f"no workload {workload!r}; expected one of {', '.join(WORKLOADS)}")


WORKLOADS = ("plain", "one_step", "loop", "nested1", "nested3", "stream", "first_run")


def main() -> None:
    workload, n = sys.argv[1], int(sys.argv[2])
    run = build(workload)
    run(1)  # warm-up
    if workload != "first_run":
        run(n)


if __name__ == "__main__":
    main()
