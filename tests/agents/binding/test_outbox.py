"""The outbox after an aborted transaction: what is written again, and what is dropped."""

from __future__ import annotations

import pytest
from chorus_agents.binding.codec import OutRecord
from chorus_agents.binding.outbox import Outbox

pytestmark = pytest.mark.unit


def record(name: str) -> OutRecord:
    return OutRecord(topic="t", key=name.encode(), value=b"{}", headers=())


def test_dropping_held_records_keeps_those_no_input_runs_again() -> None:
    outbox = Outbox()
    outbox.append(record("card"))  # outside any record's scope: loose
    outbox.release([record("echo")])  # a finished input's output: its input runs again
    outbox.release([record("http-task")], loose=True)  # an HTTP request's write

    assert outbox.drop_held() == 1
    assert [r.key for r in outbox.drain()] == [b"card", b"http-task"]


def test_loose_records_of_an_aborted_transaction_are_queued_again_first() -> None:
    outbox = Outbox()
    outbox.release([record("http-task")], loose=True)
    outbox.release([record("echo")])
    records, loose = outbox.drain_loose()
    assert [r.key for r in records] == [b"http-task", b"echo"]
    outbox.append(record("later"))
    outbox.requeue(loose)
    assert [r.key for r in outbox.drain()] == [b"http-task", b"later"]
