"""Which input records are done, per partition, and what a commit may say about them.

A partition's committed offset can only be the one after its highest *contiguous*
finished record: with handlers that take seconds to minutes, later records often finish
while an earlier one still runs. Their outputs are committed as soon as they finish
(holding them back would stall every key behind the slowest one), so the commit must
also say that they are done: the committed offset's metadata lists the finished offsets
beyond it, as Confluent's Parallel Consumer does. A new owner of the partition reads it
(:func:`decode`) and skips those records instead of running them a second time.

So the invariant holds: a record's outputs are committed exactly once, in the transaction
that marks the record done (by the offset or by the metadata). The metadata is bounded
by the broker's ``offset.metadata.max.bytes`` (4 KiB by default); a partition whose
metadata would not fit is paused until its head record finishes (:attr:`full`).

Pure bookkeeping, no I/O: the server loop calls it from its event loop only.
"""

from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field

PREFIX = "chorus1:"
"""Marks metadata this module wrote: any other is ignored (a fresh start from the offset)."""
METADATA_LIMIT = 3000
"""Bytes of metadata a partition may carry before it is paused; below the broker's
default ``offset.metadata.max.bytes`` (4,096) with room to spare."""


def encode(base: int, done: set[int] | frozenset[int]) -> str:
    """The metadata naming ``done`` (offsets at or above ``base``): a compressed bitmap."""
    beyond = sorted(o - base for o in done if o >= base)
    if not beyond:
        return ""
    bitmap = bytearray(beyond[-1] // 8 + 1)
    for bit in beyond:
        bitmap[bit // 8] |= 1 << (bit % 8)
    return PREFIX + base64.b64encode(zlib.compress(bytes(bitmap), 9)).decode("ascii")


def decode(base: int, metadata: str | None) -> frozenset[int]:
    """The finished offsets beyond ``base`` that ``metadata`` names; empty if it names none.

    Raises ValueError for metadata with this module's prefix that does not decode (the
    caller decides whether to run those records again).
    """
    if not metadata or not metadata.startswith(PREFIX):
        return frozenset()
    try:
        bitmap = zlib.decompress(base64.b64decode(metadata[len(PREFIX) :], validate=True))
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"offset metadata does not decode: {exc}") from exc
    return frozenset(
        base + index * 8 + bit
        for index, byte in enumerate(bitmap)
        if byte
        for bit in range(8)
        if byte & (1 << bit)
    )


@dataclass
class PartitionLedger:
    """One partition's records between poll and commit; see the module docstring."""

    base: int | None
    """The committed offset (every record below it is done); ``None`` before the first
    commit and the first record."""
    skip: set[int] = field(default_factory=set)
    """Offsets a previous owner finished beyond ``base``: taken as done, not run."""
    pending: set[int] = field(default_factory=set)
    """Offsets taken and not finished."""
    done: set[int] = field(default_factory=set)
    """Offsets finished beyond the lowest pending one (not yet covered by the offset)."""
    high: int | None = None
    """One past the highest offset taken."""
    dirty: bool = False
    """A record was taken or finished since the last :meth:`commit_point`."""
    full: bool = False
    """The last commit's metadata was over :data:`METADATA_LIMIT`: take no more records."""

    def take(self, offset: int) -> bool:
        """Notes a polled record; ``False`` when a previous owner finished it already."""
        self.dirty = True
        if self.base is None:
            self.base = offset
        self.high = offset + 1 if self.high is None else max(self.high, offset + 1)
        if offset in self.skip:
            self.skip.discard(offset)
            self.done.add(offset)
            return False
        self.pending.add(offset)
        return True

    def finish(self, offset: int) -> None:
        """Notes that the record at ``offset`` is done (its outputs go in the next commit)."""
        self.dirty = True
        self.pending.discard(offset)
        self.done.add(offset)

    def commit_point(self) -> tuple[int, str] | None:
        """The offset and metadata to commit now, or ``None`` when nothing was taken yet.

        Offsets a previous owner finished, not polled again yet, stay in the metadata:
        forgetting them would run them again after the next crash.
        """
        self.dirty = False
        if self.high is None:
            if self.base is None or not self.skip:
                return None
            return self.base, encode(self.base, self.skip)
        offset = min(self.pending) if self.pending else self.high
        self.done = {o for o in self.done if o >= offset}
        self.skip = {o for o in self.skip if o >= offset}
        self.base = offset
        metadata = encode(offset, self.done | self.skip)
        self.full = len(metadata) > METADATA_LIMIT
        return offset, metadata
