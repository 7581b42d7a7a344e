"""NATS JetStream for plait: ``NatsSink`` publishes every event of a run as JSON.

``Workflow(sinks=[NatsSink(...)])``, or by name once installed:
``create_sink("nats", url=..., subject=..., stream=...)``. nats-py is imported on
first use of :class:`NatsSink`, so loading plait's plugins stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait_nats._sink import NatsSink

__all__ = ["NatsSink"]


def __getattr__(name: str) -> Any:
    if name == "NatsSink":
        from plait_nats._sink import NatsSink

        NatsSink.__module__ = __name__
        return NatsSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
