"""plait: deterministic, production-grade LLM workflows."""

from plait.hookspecs import hookimpl

__all__ = ["hookimpl"]
