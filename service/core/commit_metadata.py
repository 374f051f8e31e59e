"""The offsets finished past a commit position, carried in the offset commit's metadata. Pure.

A partition's commit position is its first unfinished offset, but work completes out of
order: events past it may already have their results published. Committing only the
position would have the partition's next owner redo those (duplicate results after every
rebalance or restart). So each commit also writes which offsets past the position are
finished, compactly, in the commit's metadata string (as Confluent's Parallel Consumer
encodes its incomplete offsets), and a new owner skips what it marks done.

Format: `d1:<position>:<urlsafe base64 of zlib(varints)>`. The varints alternate, from the
position up: a run of offsets not finished, then a run finished, and so on (the first run
is never empty: the position itself is unfinished). The position is repeated so that a
reader can tell the metadata belongs to the committed offset it came with; anything else
decodes to nothing (the events are then redone: at-least-once, never lost). Brokers cap the
metadata (`offset.metadata.max.bytes`, 4096 by default): runs that do not fit are left out,
farthest first, so the nearest finished offsets are always the ones kept.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Iterable

VERSION = "d1"
DEFAULT_MAX_BYTES = 4_096


def encode(position: int, finished: Iterable[int], max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The metadata for a commit at `position` whose offsets `finished` (those past it count)
    are done; "" when none is, or none fits in `max_bytes`."""
    runs = _runs(position, sorted(offset for offset in finished if offset > position))
    while runs:
        text = _text(position, runs)
        if len(text.encode()) <= max_bytes:
            return text
        runs = runs[: max(0, (len(runs) // 2) // 2 * 2)]  # keep the nearest half (whole pairs)
    return ""


def decode(position: int, metadata: str | None) -> set[int]:
    """The offsets past `position` the metadata marks finished (empty when it is not ours,
    is corrupt, or was written for another position)."""
    if not metadata or not metadata.startswith(VERSION + ":"):
        return set()
    try:
        _, written_at, payload = metadata.split(":", 2)
        if int(written_at) != position:
            return set()
        runs = _varints(zlib.decompress(base64.urlsafe_b64decode(payload.encode())))
    except (ValueError, zlib.error, binascii.Error):
        return set()
    return _offsets(position, runs)


def _runs(position: int, finished: list[int]) -> list[int]:
    """Alternating lengths: unfinished, finished, unfinished, ... from `position` up."""
    runs: list[int] = []
    cursor = position
    for offset in finished:
        gap = offset - cursor
        if gap > 0 or not runs:
            runs.extend([gap, 1])
        else:
            runs[-1] += 1
        cursor = offset + 1
    return runs


def _offsets(position: int, runs: list[int]) -> set[int]:
    done: set[int] = set()
    cursor = position
    for index in range(0, len(runs) - 1, 2):
        cursor += runs[index]
        done.update(range(cursor, cursor + runs[index + 1]))
        cursor += runs[index + 1]
    return done


def _text(position: int, runs: list[int]) -> str:
    packed = zlib.compress(bytes(_varint_bytes(runs)), 9)
    return f"{VERSION}:{position}:{base64.urlsafe_b64encode(packed).decode()}"


def _varint_bytes(values: list[int]) -> bytearray:
    out = bytearray()
    for value in values:
        rest = value
        while rest >= 0x80:
            out.append((rest & 0x7F) | 0x80)
            rest >>= 7
        out.append(rest)
    return out


def _varints(data: bytes) -> list[int]:
    values: list[int] = []
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")
            continue
        values.append(value)
        value = shift = 0
    if shift:
        raise ValueError("truncated varint")
    return values
