"""Defaults that light modules name without importing what they configure (the CLI's
``--help`` and ``--version`` do not import the storage layer, and pydantic with it)."""

from __future__ import annotations

__all__ = ["BUDGET_LIMITS", "DEFAULT_STORAGE"]

#: Where the ``plait`` CLI stores and looks for runs when neither ``--storage`` nor
#: ``$PLAIT_STORAGE`` names a store (also :data:`plait.storage.DEFAULT_STORAGE`).
DEFAULT_STORAGE = "sqlite:///.plait/plait.db"

#: a Budget's limits (plait._budget), in the order errors and events list them; the CLI's
#: ``--budget-max-...`` options are made from them
BUDGET_LIMITS = (
    "max_requests",
    "max_tool_calls",
    "max_input_tokens",
    "max_output_tokens",
    "max_total_tokens",
    "max_cost",
)
