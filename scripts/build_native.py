#!/usr/bin/env python3
"""Compiles the service's hot-path modules with mypyc, in a copy of the package.

    python scripts/build_native.py DEST     copy service/ to DEST/service and compile it there

The modules are service.entry.native.NATIVE_MODULES; their code goes into one shared
library, DEST/service/_compiled__mypyc.*.so, and each module gets a small extension module
beside its .py (Python prefers it to the source). The image runs this in its build stage
(DEST is the stage's own copy); CI runs it into a temporary copy and runs the unit suite
there (tests/packaging/test_native.py). It refuses to compile into a git working tree:
development runs the sources, so nothing compiled can go stale beside them. Needs mypy
(which ships mypyc), setuptools, a C compiler and the Python headers; run it with the
interpreter that will run the service (extension modules are built for one Python).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import mypy.version
from mypyc.build import mypycify
from setuptools import setup

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.entry.native import (  # noqa: E402  # the repository root is on the path only now
    NATIVE_MODULES,
    PACKAGE,
)

GROUP_NAME = f"{PACKAGE}._compiled"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("dest", type=Path, help="folder to hold the compiled copy of service/")
    dest = parser.parse_args().dest.resolve()
    if (dest / ".git").exists():
        print(f"build_native: {dest} is a git working tree; compile into a copy", file=sys.stderr)
        return 2
    started = time.monotonic()
    _copy_sources(dest)
    _compile(dest)
    print(
        f"build_native: {len(NATIVE_MODULES)} modules compiled with mypyc "
        f"{mypy.version.__version__} in {time.monotonic() - started:.0f}s into {dest}"
    )
    return 0


def _copy_sources(dest: Path) -> None:
    """DEST/service becomes a fresh copy of the package's sources (nothing else)."""
    source, target = REPO_ROOT / PACKAGE, dest / PACKAGE
    if source.resolve() == target.resolve():
        return  # the image's build stage: the copy is already there
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.so"))


def _compile(dest: Path) -> None:
    os.chdir(dest)  # mypy resolves `service.*` imports from here
    sources = [str(Path(*name.split("."))) + ".py" for name in NATIVE_MODULES]
    # setuptools reads a pyproject.toml, if any, and warns that its support is beta
    warnings.filterwarnings("ignore", message=r"Support for `\[tool.setuptools\]`")
    with tempfile.TemporaryDirectory(prefix="build-native-") as work:
        extensions = mypycify(sources, opt_level="3", group_name=GROUP_NAME, target_dir=f"{work}/c")
        setup(
            name="service-native",
            ext_modules=extensions,
            script_args=[
                "--quiet",
                "build_ext",
                "--inplace",
                f"--build-temp={work}/temp",
                f"--build-lib={work}/lib",
            ],
        )


if __name__ == "__main__":
    sys.exit(main())
