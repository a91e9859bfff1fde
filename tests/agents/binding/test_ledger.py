"""The ledger: what a commit says is done, and how a new owner reads it after a crash.

The model test runs records to a partition in any order of finishing, "crashes" after
any commit, lets a new owner go on from the committed offset and metadata, and counts how
often each record ran: exactly once, every time. The control commits the offset alone
(no metadata, what a plain consumer does), and the same model must find a record run
twice.
"""

from __future__ import annotations

import random

import pytest
from chorus_agents.binding.ledger import METADATA_LIMIT, PREFIX, PartitionLedger, decode, encode
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.unit


@given(
    base=st.integers(min_value=0, max_value=10**12),
    offsets=st.sets(st.integers(min_value=0, max_value=5000), max_size=300),
)
def test_metadata_round_trips(base: int, offsets: set[int]) -> None:
    done = {base + o for o in offsets}
    assert decode(base, encode(base, done)) == done


def test_offsets_below_the_base_are_not_named() -> None:
    assert encode(10, {3, 9}) == ""
    assert decode(10, encode(10, {3, 11, 12})) == {11, 12}


def test_foreign_or_broken_metadata() -> None:
    assert decode(5, "written by another tool") == frozenset()
    assert decode(5, None) == frozenset()
    with pytest.raises(ValueError, match="does not decode"):
        decode(5, PREFIX + "!!!")


def test_the_offset_stops_at_the_first_unfinished_record_and_the_metadata_names_the_rest() -> None:
    ledger = PartitionLedger(base=None)
    for offset in range(10):
        assert ledger.take(offset)
    for offset in (3, 5, 6):
        ledger.finish(offset)
    point = ledger.commit_point()
    assert point is not None
    offset, metadata = point
    assert offset == 0
    assert decode(0, metadata) == {3, 5, 6}
    for offset in (0, 1, 2, 4):
        ledger.finish(offset)
    assert ledger.commit_point() == (7, "")


def test_a_new_owner_skips_what_the_metadata_names_and_keeps_naming_it() -> None:
    ledger = PartitionLedger(base=7, skip={9, 12})
    assert ledger.commit_point() == (7, encode(7, {9, 12}))  # nothing polled yet
    assert ledger.take(7)
    assert ledger.take(8)
    assert not ledger.take(9)
    assert ledger.commit_point() == (7, encode(7, {9, 12}))
    ledger.finish(7)
    ledger.finish(8)
    assert ledger.commit_point() == (10, encode(10, {12}))


def test_a_partition_with_too_much_to_say_is_full() -> None:
    ledger = PartitionLedger(base=0)
    for offset in range(40_000):
        ledger.take(offset)
    chance = random.Random(7)
    for offset in range(1, 40_000):  # finished at random: compresses badly
        if chance.random() < 0.5:
            ledger.finish(offset)
    point = ledger.commit_point()
    assert point is not None and len(point[1]) > METADATA_LIMIT
    assert ledger.full


def run_with_crashes(
    count: int, order: list[int], crashes: list[int], *, metadata: bool
) -> dict[int, int]:
    """Runs ``count`` records finishing in ``order``, crashing after the commits named by
    ``crashes`` (positions in ``order``); returns how many times each record ran."""
    runs: dict[int, int] = dict.fromkeys(range(count), 0)
    committed: tuple[int, str] | None = None
    done_somewhere: set[int] = set()
    while len(done_somewhere) < count:
        base, meta = committed or (0, "")
        ledger = PartitionLedger(base=base, skip=set(decode(base, meta)) if metadata else set())
        taken = [o for o in range(base, count) if ledger.take(o)]
        # This owner finishes its records in the given order (those it took), committing
        # after each, until the next crash.
        steps = [o for o in order if o in set(taken)]
        crash_at = crashes.pop(0) if crashes else len(steps)
        for step, offset in enumerate(steps):
            runs[offset] += 1
            ledger.finish(offset)
            done_somewhere.add(offset)
            point = ledger.commit_point()
            if point is not None:
                committed = point if metadata else (point[0], "")
            if step == crash_at:
                break
    return runs


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    count=st.integers(min_value=1, max_value=40),
)
def test_every_record_runs_exactly_once_across_crashes(data: st.DataObject, count: int) -> None:
    order = data.draw(st.permutations(list(range(count))))
    crashes = data.draw(st.lists(st.integers(min_value=0, max_value=count), max_size=4))
    runs = run_with_crashes(count, list(order), crashes, metadata=True)
    assert set(runs.values()) == {1}, runs


def test_control_without_metadata_runs_records_twice() -> None:
    """The offset alone: records finished beyond a running one are run again after a crash."""
    runs = run_with_crashes(4, [2, 3, 0, 1], [1], metadata=False)
    assert runs[2] == 2 and runs[3] == 2
    assert run_with_crashes(4, [2, 3, 0, 1], [1], metadata=True) == dict.fromkeys(range(4), 1)
