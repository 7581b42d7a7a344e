"""Prices of known models, from a maintained price table: ``metrics.cost`` without typing prices in.

plait reads the table of the ``genai-prices`` package (Pydantic's, updated as providers change
their prices) when it is installed: ``pip install 'plait[prices]'``. It is imported on the
first model call that needs a price, never at ``import plait``.

* An explicit :class:`~plait.models.Pricing` on a model always wins over the table.
* A model of a provider the table knows, but not the model itself, is reported once per
  process with a :class:`PriceWarning`; its cost stays ``None``.
* Providers the table does not know (plait's offline and test models, your own) are not
  looked up and not warned about.
* ``Budget(max_cost=...)`` on a model without a price is an error (:class:`~plait.errors.DefinitionError`)
  when the run resolves the model, not a limit that silently never triggers.

LiteLLM model names (``"openai/gpt-4o-mini"``) are looked up under their prefix's provider.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

__all__ = ["PriceWarning", "price_table_available", "table_cost", "table_pricing"]


class PriceWarning(UserWarning):
    """A model of a known provider has no price in the price table: its cost is unknown."""


#: (provider, model) -> (genai-prices provider id, model ref), or None when not in the table
_resolved: dict[tuple[str, str], tuple[str, str] | None] = {}
_lock = threading.Lock()
_table: Any = None  # the genai_prices module, once imported; False when not installed


def _prices() -> Any:
    global _table
    if _table is None:
        try:
            import genai_prices
        except ImportError:
            _table = False
        else:
            _table = genai_prices
    return _table


def price_table_available() -> bool:
    """Whether the price table (the ``genai-prices`` package: ``plait[prices]``) is installed."""
    return bool(_prices())


def _lookup(provider: str, model: str) -> tuple[str, str] | None:
    key = (provider, model)
    try:
        return _resolved[key]
    except KeyError:
        pass
    found = _find(provider, model)
    with _lock:
        _resolved[key] = found
    return found


def _find(provider: str, model: str) -> tuple[str, str] | None:
    table = _prices()
    if not table:
        return None
    candidates = [(provider, model)]
    if "/" in model:  # LiteLLM's "openai/gpt-4o-mini"
        prefix, _, rest = model.partition("/")
        candidates.insert(0, (prefix, rest))
    snapshot = table.data_snapshot.get_snapshot()
    known_provider = False
    for provider_id, ref in candidates:
        if not any(p.id == provider_id for p in snapshot.providers):
            continue
        known_provider = True
        try:
            table.calc_price(table.Usage(input_tokens=1, output_tokens=1), ref, provider_id=provider_id)
        except LookupError:
            continue
        return provider_id, ref
    if known_provider:
        warnings.warn(
            f"the price table (genai-prices) has no price for {provider}:{model}, so its calls have "
            "no cost; give the model pricing=Pricing(input=..., output=...) (per million tokens)",
            PriceWarning,
            stacklevel=4,
        )
    return None


def table_cost(provider: str, model: str, input_tokens: int, output_tokens: int) -> float | None:
    """What ``input_tokens`` and ``output_tokens`` of ``provider:model`` cost by the price table
    (its tiers applied), or None when the table is not installed or does not know the model."""
    found = _lookup(provider, model)
    if found is None:
        return None
    table = _prices()
    result = table.calc_price(
        table.Usage(input_tokens=input_tokens, output_tokens=output_tokens), found[1], provider_id=found[0]
    )
    return float(result.total_price)


def table_pricing(provider: str, model: str) -> tuple[float, float] | None:
    """The table's (input, output) price per million tokens of ``provider:model`` at its base
    tier, or None when unknown: what a budget uses to estimate a call before it is made."""
    found = _lookup(provider, model)
    if found is None:
        return None
    table = _prices()
    # priced at a thousand tokens (under any long-context tier), scaled to a million
    sample = 1000
    result_in = table.calc_price(table.Usage(input_tokens=sample), found[1], provider_id=found[0])
    result_out = table.calc_price(table.Usage(output_tokens=sample), found[1], provider_id=found[0])
    scale = 1_000_000 / sample
    return float(result_in.total_price) * scale, float(result_out.total_price) * scale
