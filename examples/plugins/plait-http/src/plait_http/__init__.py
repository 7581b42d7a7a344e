"""An HTTP request step for plait (and a template for third-party step types)."""

from plait_http.step import HttpRequest, HttpStatusError

__all__ = ["HttpRequest", "HttpStatusError"]
