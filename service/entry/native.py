"""Which modules make up the compiled hot path, and whether this process runs them compiled.

`scripts/build_native.py` compiles NATIVE_MODULES with mypyc (the per-event path: reading,
mapping a decoded event, batching, tracking offsets, building results) into extension
modules beside their sources, in a copy of the package: the image's build stage, or the copy
CI tests. Development and the tests run the sources; nothing is ever compiled into the
working tree, so nothing can go stale there, and nothing is checked at import time.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

PACKAGE = "service"
NATIVE_MODULES = (
    "service.core.model",
    "service.core.ids",
    "service.core.codec",
    "service.core.records",
    "service.core.ordering",
    "service.core.offsets",
    "service.core.batching",
    "service.core.responses",
    "service.core.outcomes",
    "service.core.mapping.timestamps",
    "service.core.mapping.convert",
    "service.core.mapping.apply",
    "service.loop.handover",
    "service.loop.workers",
    "service.loop.publisher",
    "service.loop.pipeline",
)


def compiled_modules() -> tuple[str, ...]:
    """The hot-path modules this process loads as extension modules (imports them)."""
    return tuple(name for name in NATIVE_MODULES if _is_extension(name))


def describe() -> str:
    """`compiled` (every hot-path module), `pure Python`, or which are compiled."""
    done = compiled_modules()
    if len(done) == len(NATIVE_MODULES):
        return "compiled"
    if not done:
        return "pure Python"
    return f"partly compiled ({', '.join(done)})"


def _is_extension(name: str) -> bool:
    origin = str(importlib.import_module(name).__file__ or "")
    return origin.endswith(tuple(EXTENSION_SUFFIXES))
