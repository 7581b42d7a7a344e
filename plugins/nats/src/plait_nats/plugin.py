"""The ``nats`` entry point: registers the ``nats`` event sink (nats-py is imported on first use)."""

from __future__ import annotations

from typing import Any

from plait.hookspecs import hookimpl

__all__ = ["create_sink", "register_event_sinks"]


def create_sink(**options: Any) -> Any:
    """``create_sink("nats", url=..., subject=..., stream=...)``: a :class:`plait_nats.NatsSink`."""
    from plait_nats._sink import NatsSink

    return NatsSink(**options)


@hookimpl
def register_event_sinks(register: Any) -> None:
    register("nats", create_sink)
