"""Kafka stream processor that keeps HubSpot subscriptions in step with subscription events."""

import os
from pathlib import Path

from service import native as _native

__version__ = "0.1.0"

# Compiled hot-path modules (scripts/build_native.py) are used only when built from these very
# sources; otherwise every module loads from source. Decided before any other module loads.
NATIVE = _native.choose(Path(__file__).parent, os.environ)
