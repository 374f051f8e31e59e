"""Drive the image under test with buildah: build it, read its config, run commands in it.

Everything goes through `scripts/image/buildah` (the project's own storage, vfs driver) with
chroot isolation, so a containerised process is a host process sharing the host network: it
reaches the local broker and emulator on 127.0.0.1, and a test can signal it directly
(`buildah run` kills its command on SIGTERM instead of passing the signal on).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILDAH = REPO / "scripts" / "image" / "buildah"
BUILD = REPO / "scripts" / "image" / "build"
IMAGE_CACHE_ENV = "IMAGE_CACHE"
BUILD_TIMEOUT_S = 1800


class BuildahUnavailableError(RuntimeError):
    """buildah cannot run here; the message says why."""


def buildah_unavailable() -> str | None:
    """Why the image tests cannot run here, or None when they can."""
    if shutil.which("buildah") is None:
        return "buildah is not installed (apt-get install buildah debootstrap)"
    if os.geteuid() != 0:
        return "buildah with vfs storage and chroot isolation needs root here"
    return None


def buildah(*args: str, timeout_s: float = 120) -> str:
    """Run `scripts/image/buildah ARGS`; its stdout, or an error with its stderr."""
    result = subprocess.run(
        [str(BUILDAH), *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class BuiltImage:
    """What scripts/image/build reports (its image.env) and the image's own config."""

    name: str
    report: dict[str, str]
    config: dict[str, Any]
    sbom: Path

    @classmethod
    def load(cls, output: Path) -> BuiltImage:
        """The image a build with its outputs in `output` made."""
        report = read_report(output / "image.env")
        image = report["IMAGE"]
        return cls(image, report, image_config(image), output / "sbom.cdx.json")

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.config.get("Labels") or {}
        return labels

    @property
    def command(self) -> list[str]:
        """What the image runs by default: its entrypoint followed by its command."""
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]


def build_image(output: Path) -> BuiltImage:
    """`scripts/image/build --stand-in` with its outputs in `output`."""
    env = {**os.environ, "IMAGE_OUT": str(output)}
    result = subprocess.run(
        [str(BUILD), "--stand-in"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"image build failed:\n{result.stdout}\n{result.stderr}")
    return BuiltImage.load(output)


def read_report(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def image_config(image: str) -> dict[str, Any]:
    """The OCI config of `image` (Entrypoint, Cmd, User, Env, Labels...)."""
    document = json.loads(buildah("inspect", "--type", "image", image))
    config: dict[str, Any] = document["OCIv1"]["config"]
    return config


class Container:
    """A working container of an image; `run` starts a command in it as a host process."""

    def __init__(self, image: str) -> None:
        self.name = f"image-test-{uuid.uuid4().hex[:10]}"
        buildah("from", "--pull-never", "--name", self.name, image, timeout_s=600)

    def command(
        self, argv: Sequence[str], env: Mapping[str, str], user: str = "10001:10001"
    ) -> list[str]:
        """The host command line that runs `argv` in this container as `user`."""
        settings = [f"--env={key}={value}" for key, value in env.items()]
        return [str(BUILDAH), "run", "--isolation", "chroot", f"--user={user}", *settings,
                self.name, "--", *argv]  # fmt: skip

    def run(
        self, argv: Sequence[str], env: Mapping[str, str], timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` to completion; its exit code and output."""
        return subprocess.run(
            self.command(argv, env), capture_output=True, text=True, timeout=timeout_s, check=False
        )

    def start(
        self, argv: Sequence[str], env: Mapping[str, str], log: Path
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in the background, its output appended to `log`."""
        with log.open("ab") as out:
            return subprocess.Popen(self.command(argv, env), stdout=out, stderr=subprocess.STDOUT)

    def remove(self) -> None:
        buildah("rm", self.name)
