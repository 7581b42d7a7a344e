"""One adapter per framework, each with the same interface.

An adapter module defines:

- `IMPORT_STATEMENT`: what a user writes to start using the framework (timed by workload G);
- `FIRST_RUN_STATEMENT`: that import, then building and running a one-step workflow once (G, first run);
- `build(workload, params)`: builds the workload once (outside the timing) and returns a
  zero-argument callable, sync or `async def`, that runs it once and returns the normalised
  output that `bench.cases.check_output` checks. It may instead return a dict of named variants
  (workload H: off / on). The framework is imported inside `build`, never at module level, so
  importing an adapter costs nothing and cannot fail.
"""


class NotSupported(Exception):
    """The framework lacks what this workload needs: the row reports "n/a" with this reason."""
