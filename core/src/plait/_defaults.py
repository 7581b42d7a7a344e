"""Defaults that light modules name without importing what they configure (the CLI's
``--help`` and ``--version`` do not import the storage layer, and pydantic with it)."""

from __future__ import annotations

__all__ = ["DEFAULT_STORAGE"]

#: Where the ``plait`` CLI stores and looks for runs when neither ``--storage`` nor
#: ``$PLAIT_STORAGE`` names a store (also :data:`plait.storage.DEFAULT_STORAGE`).
DEFAULT_STORAGE = "sqlite:///.plait/plait.db"
