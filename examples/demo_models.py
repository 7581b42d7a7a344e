"""Models for the examples: offline by default, a real provider when you ask for one.

Every example builds its agents with ``demo_model()``. Offline it is
``"offline:demo"`` (:class:`plait.testing.OfflineModel`): a deterministic model
that writes a short, readable reply suited to each agent's instructions,
streamed word by word, so the examples run anywhere without an API key
(``PLAIT_OFFLINE_DELAY=0`` streams without the per-word delay). Set
``PLAIT_EXAMPLE_MODEL`` to a model string to run them against a real provider::

    PLAIT_EXAMPLE_MODEL=openai:gpt-4o-mini python examples/research_and_write.py
"""

from __future__ import annotations

import os


def demo_model() -> str:
    """The model every example agent uses."""
    return os.environ.get("PLAIT_EXAMPLE_MODEL") or "offline:demo"


def announce() -> None:
    """Say which model the example runs on, so offline text is never mistaken for a real model's."""
    model = demo_model()
    if model == "offline:demo":
        print("model: offline:demo, plait's offline demo model (no API key, scripted text).")
        print("Set PLAIT_EXAMPLE_MODEL=openai:gpt-4o-mini (or another model) for a real one.\n")
    else:
        print(f"model: {model}\n")
