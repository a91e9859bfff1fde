"""Which tasks a replica fails as ``replica-lost``: a pure decision, scan after scan."""

from __future__ import annotations

import pytest
from chorus_agents.lost import client_id, lost
from chorus_agents.tasks import RunningTask

pytestmark = pytest.mark.unit

INBOX = "chorus.t.a2a.risk.inbox"
MINE = {(INBOX, 0)}


def owns(source: tuple[str, int]) -> bool:
    return source in MINE


def task(task_id: str, writer: str, partition: int | None = 0) -> RunningTask:
    return RunningTask(task_id, writer, None if partition is None else (INBOX, partition))


def test_a_writer_absent_in_two_scans_loses_its_tasks_on_the_partitions_this_replica_owns() -> None:
    running = [task("a", "gone"), task("b", "gone", 1), task("c", "me"), task("d", "peer")]
    live = frozenset({"me", "peer"})
    first, absent = lost(running, live=live, absent_before=frozenset(), me="me", owns=owns)
    assert (first, absent) == ([], frozenset({"gone"}))  # one scan is no verdict
    second, absent = lost(running, live=live, absent_before=absent, me="me", owns=owns)
    assert [t.task_id for t in second] == ["a"]  # b's partition is another replica's
    assert absent == frozenset({"gone"})


def test_a_writer_that_came_back_between_scans_loses_nothing() -> None:
    running = [task("a", "flaky")]
    _, absent = lost(running, live=frozenset({"me"}), absent_before=frozenset(), me="me", owns=owns)
    back, absent = lost(
        running, live=frozenset({"me", "flaky"}), absent_before=absent, me="me", owns=owns
    )
    assert (back, absent) == ([], frozenset())


def test_a_task_from_outside_kafka_is_failed_by_the_lowest_live_replica_only() -> None:
    running = [task("h", "gone", partition=None)]
    before = frozenset({"gone"})
    live = frozenset({"replica-0", "replica-1"})
    low, _ = lost(running, live=live, absent_before=before, me="replica-0", owns=owns)
    high, _ = lost(running, live=live, absent_before=before, me="replica-1", owns=owns)
    assert [t.task_id for t in low] == ["h"]
    assert high == []


def test_the_client_id_names_the_instance() -> None:
    assert client_id("risk-7f9c-x2").endswith(":risk-7f9c-x2")
