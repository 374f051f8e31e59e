"""Find a containerised process among a host process's descendants (chroot isolation makes
it an ordinary host process) and read who it runs as."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class HostProcess:
    pid: int
    argv: tuple[str, ...]
    uids: tuple[int, int]  # real, effective
    gids: tuple[int, int]


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the command may hold spaces or ")"


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, queue = [], [root]
    while queue:
        below = children.get(queue.pop(), [])
        found.extend(below)
        queue.extend(below)
    return found


def host_process(pid: int) -> HostProcess | None:
    """The process's command line and ids; None once it is gone."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
        status = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in status}
    uids, gids = fields["Uid"], fields["Gid"]
    return HostProcess(
        pid,
        tuple(part.decode(errors="replace") for part in argv if part),
        (int(uids[0]), int(uids[1])),
        (int(gids[0]), int(gids[1])),
    )


def find_descendant(root: int, matches: Callable[[HostProcess], bool]) -> HostProcess | None:
    for pid in descendants(root):
        process = host_process(pid)
        if process is not None and matches(process):
            return process
    return None


def runs(argv_tail: Sequence[str]) -> Callable[[HostProcess], bool]:
    """Matches the Python interpreter itself (not buildah's exec helper, whose command line
    also ends with the command) running a command line that ends with `argv_tail`."""

    def matches(process: HostProcess) -> bool:
        program = Path(process.argv[0]).name if process.argv else ""
        tail = tuple(argv_tail)
        return program.startswith("python") and process.argv[-len(tail) :] == tail

    return matches
