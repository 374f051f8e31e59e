"""Compare a CycloneDX SBOM's Python components with the locked runtime dependencies.

A lock entry is a pinned requirement line (`name==version [; marker]`, hashes on continuation
lines); entries whose marker does not hold in the image (Linux, CPython 3.11) are not
expected there. Names compare in their canonical form (prometheus_client is
prometheus-client).
"""

from __future__ import annotations

import json
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Where the image's Python runs: what the lock's environment markers are evaluated against.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


def locked_versions(lock_text: str) -> dict[str, str]:
    """Canonical name -> pinned version, for the entries that apply in the image."""
    locked: dict[str, str] = {}
    for line in lock_text.splitlines():
        if not line or line[0] in " #-":
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is not None and not requirement.marker.evaluate(IMAGE_ENVIRONMENT):
            continue
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"not an exact pin: {line}"
        locked[canonicalize_name(requirement.name)] = pin.version
    return locked


def sbom_versions(document: dict[str, object]) -> dict[str, str]:
    """Canonical name -> version of every component of type library in the SBOM."""
    components = document.get("components") or []
    assert isinstance(components, list)
    return {
        canonicalize_name(component["name"]): component.get("version", "")
        for component in components
        if component.get("type") == "library"
    }


def lock_mismatches(locked: dict[str, str], found: dict[str, str]) -> dict[str, str]:
    """Each locked package the SBOM lacks or lists at another version, with what it found."""
    return {
        name: f"locked {version}, SBOM has {found.get(name, 'nothing')}"
        for name, version in sorted(locked.items())
        if found.get(name) != version
    }


def load_sbom(path: Path) -> dict[str, object]:
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    assert document.get("bomFormat") == "CycloneDX", "not a CycloneDX document"
    return document
