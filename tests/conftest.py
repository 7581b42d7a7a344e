"""Suite-wide settings: the offline demo model streams without its per-word delay (a person
watching the demo wants it; the suite does not), in this process and the ones it starts."""

from __future__ import annotations

import os

os.environ.setdefault("PLAIT_OFFLINE_DELAY", "0")
