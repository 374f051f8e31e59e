#!/usr/bin/env python3
"""Compiles the service's hot-path modules with mypyc, next to their sources.

    python scripts/build_native.py            build, unless the build there is current
    python scripts/build_native.py --force    build even if current
    python scripts/build_native.py --clean    remove it: the service then runs as pure Python

The modules are service.native.NATIVE_MODULES; their code goes into one shared library,
service/_compiled__mypyc.*.so, and each module gets a small extension module beside its .py.
service/native.json records the sha256 of every source compiled: the package uses the
build only while those sources are unchanged (service/native.py). Needs mypy (which ships
mypyc), setuptools, a C compiler and the Python headers. Run with the interpreter that will
run the service: extension modules are built for one Python version and platform.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

import mypy.version
from mypyc.build import mypycify
from setuptools import setup

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from service.native import (  # noqa: E402  # the repository root is on the path only now
    GROUP_NAME,
    MANIFEST,
    NATIVE_MODULES,
    PACKAGE,
    source_hashes,
    source_path,
    stale,
)

PACKAGE_DIR = REPO_ROOT / PACKAGE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--force", action="store_true", help="build even if current")
    parser.add_argument("--clean", action="store_true", help="remove the build")
    args = parser.parse_args()
    if args.clean:
        print(f"removed {_clean()} compiled files")
        return 0
    if not args.force and stale(PACKAGE_DIR) is None:  # a missing build is stale too
        return 0
    return _build()


def _clean() -> int:
    built = [*PACKAGE_DIR.rglob("*.so"), *PACKAGE_DIR.rglob("*.pyd")]
    manifest = PACKAGE_DIR / MANIFEST
    for path in [*built, manifest]:
        path.unlink(missing_ok=True)
    return len(built)


def _build() -> int:
    started = time.monotonic()
    _clean()
    os.chdir(REPO_ROOT)  # mypy resolves `service.*` imports from here
    sources = [str(source_path(PACKAGE_DIR, m).relative_to(REPO_ROOT)) for m in NATIVE_MODULES]
    # setuptools reads the project's pyproject.toml and warns that its support is beta
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
    manifest = {
        "mypy": mypy.version.__version__,
        "python": sysconfig.get_config_var("EXT_SUFFIX"),
        "modules": source_hashes(PACKAGE_DIR),
    }
    (PACKAGE_DIR / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    elapsed = time.monotonic() - started
    print(
        f"build_native: {len(NATIVE_MODULES)} modules compiled with mypyc "
        f"{mypy.version.__version__} in {elapsed:.0f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
