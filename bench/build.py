"""Which build of the service a benchmark runs: the sources, or a compiled copy of them.

`compiled` (the default) is what the image ships: scripts/build_native.py compiles the hot
path with mypyc into a copy under the run's work folder (needs a C compiler); `source` runs
the working tree as development and the tests do. Every service process checks, once ready,
that it runs the build asked for (bench.procs.Service.wait_ready).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.machine import REPO

BUILDS = ("compiled", "source")


@dataclass(frozen=True)
class Code:
    build: str  # one of BUILDS
    root: Path  # the folder holding the service/ package the processes import


def prepare(build: str, work_dir: Path) -> Code:
    """The code to run; for `compiled`, compiles it first (about 30 s)."""
    if build == "source":
        return Code(build, REPO)
    if shutil.which("cc") is None:
        raise SystemExit("bench: the compiled build needs a C compiler (cc); or use --build source")
    root = work_dir / "compiled"
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_native.py"), str(root)], check=True
    )
    return Code(build, root)
