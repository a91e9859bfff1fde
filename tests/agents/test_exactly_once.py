"""Exactly-once under SIGKILL, with handlers as slow and as uneven as model calls.

The agent (``chorus agent run``, a real subprocess) handles every record of a subscribed
topic by waiting its latency (most instant, some up to 1.5 s, one 31 s: far beyond the
rest, so later records of their partitions finish first) and publishing an echo. The
echo is committed in the transaction that marks its record done, by the offset or, for
records finished beyond a running one, by the offset's metadata.

The process is SIGKILLed three times *while a transaction with records is open*: the
test stops it (SIGSTOP), looks whether the echo topic's high watermark is past its last
stable offset (records written, not committed), and kills it if so (else lets it go on
and looks again). A ``read_uncommitted`` reader then
sees more echoes than there are inputs: the aborted ones, proof that the kills landed
inside transactions. The last restart takes a new instance name (a new transactional id,
as a replaced pod has). Read committed, every input has exactly one echo, and per key the
echoes come in input order.

The control runs the same with ``at-least-once`` and must find duplicates.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chorus_agents.binding.ledger import decode
from chorus_api.topics import consumer_group
from confluent_kafka import Consumer, TopicPartition

from tests.agents.echo_process import (
    LONG_S,
    PARTITIONS,
    EchoAgent,
    EchoReader,
    Feeder,
    OpenTransactions,
    aborted,
    assert_in_key_order,
    check_echoes,
    ensure_stopped,
    free_port,
    kill_inside_transaction,
    kill_when,
    run_until,
    tail,
    wait_ready,
)

KILLS = 3
CONTROL_INPUTS = 800
REBALANCE_INPUTS = 1_200
STRIDE = 150
"""Echoes committed between kills."""
AHEAD = 600
"""Inputs fed beyond the echoes at each kill, so the agent cannot run out of work
before the test has its kills."""


@pytest.mark.runtime
@pytest.mark.seconds(80)
def test_every_input_has_exactly_one_output_despite_sigkills_inside_transactions(
    kafka: Any, tmp_path: Path
) -> None:
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    agent.env[LONG_S] = "31"  # past the old loop's 30 s limits
    inputs = Feeder(kafka, agent.source)
    inputs.feed_to(AHEAD)
    committed = EchoReader(kafka, agent.sink, committed=True)
    uncommitted = EchoReader(kafka, agent.sink, committed=False)
    transactions = OpenTransactions(kafka, agent.sink)
    at_kill: list[int] = []

    def keep_busy() -> None:
        inputs.feed_to(len(committed.echoes) + AHEAD)
        committed.poll()

    agent.start()
    try:
        for kill in range(KILLS):
            stable = transactions.stable()
            point = len(committed.echoes) + STRIDE
            run_until(
                committed,
                agent,
                lambda p=point: len(committed.echoes) >= p,  # type: ignore[misc]
                f"{point} echoes",
                timeout=120,
            )
            kill_inside_transaction(agent, transactions, stable, keep_busy)
            at_kill.append(len(committed.echoes))
            keep_busy()
            # the last restart is a replaced pod: a new name, so a new transactional id
            # (the killed transaction then holds readers back until it times out)
            agent.start("replica-1" if kill == KILLS - 1 else "replica-0")
        # no more inputs: the agent ends with what was fed
        run_until(
            committed, agent, lambda: committed.poll() >= inputs.fed, "every echo", timeout=180
        )
        agent.stop()
    finally:
        ensure_stopped(agent.process)

    # The kills landed inside transactions: their records were written, then aborted.
    written_then_aborted = aborted(committed, uncommitted)
    committed.close()
    uncommitted.close()
    assert written_then_aborted > 0, f"no aborted echo: no kill hit a transaction ({at_kill})"
    lost, duplicated = check_echoes(committed.echoes, inputs.fed)
    assert not lost, f"{len(lost)} inputs without an echo, e.g. {lost[:10]} (kills at {at_kill})"
    assert not duplicated, f"{len(duplicated)} inputs echoed twice, e.g. {list(duplicated)[:10]}"
    assert_in_key_order(committed.echoes)


@pytest.mark.runtime
@pytest.mark.seconds(30)
def test_control_at_least_once_duplicates_under_the_same_kills(kafka: Any, tmp_path: Path) -> None:
    """The same agent at least once: killed (stopped, then killed) while echoes are written
    whose inputs its committed offsets do not cover yet, it writes those echoes again."""
    agent = EchoAgent(kafka, tmp_path, "at-least-once")
    Feeder(kafka, agent.source).feed_to(CONTROL_INPUTS)
    reader = EchoReader(kafka, agent.sink, committed=True)
    marks = Consumer(kafka.client_config(**{"group.id": consumer_group(agent.namespace, "echo")}))
    echoes = OpenTransactions(kafka, agent.sink)

    def unmarked() -> bool:
        """More echoes written than inputs marked done (offsets and their metadata)."""
        done = 0
        for tp in marks.committed([TopicPartition(agent.source, p) for p in range(PARTITIONS)]):
            if tp.offset >= 0:
                done += tp.offset + len(decode(tp.offset, tp.metadata))
        return sum(echoes.high()) > done

    agent.start()
    try:
        run_until(reader, agent, lambda: len(reader.echoes) >= 300, "300 echoes", timeout=120)
        kill_when(agent, unmarked, between=reader.poll)
        agent.start()
        run_until(reader, agent, lambda: reader.poll() >= CONTROL_INPUTS, "every echo", timeout=180)
        run_until(
            reader,
            agent,
            lambda: not check_echoes(reader.echoes, CONTROL_INPUTS)[0],
            "an echo of every input",
            timeout=180,
        )
        agent.stop()
    finally:
        ensure_stopped(agent.process)
    reader.settle()
    reader.close()
    marks.close()
    lost, duplicated = check_echoes(reader.echoes, CONTROL_INPUTS)
    assert not lost
    assert duplicated, "at-least-once with kills mid-stream must write some echo twice"


@pytest.mark.runtime
@pytest.mark.seconds(22)
def test_a_replica_joining_and_leaving_mid_stream_loses_and_repeats_nothing(
    kafka: Any, tmp_path: Path
) -> None:
    """A second replica joins after 200 echoes and leaves (SIGTERM) after 900: partitions
    move to it and back while slow records run; read committed, every input once, in
    order per key."""
    agent = EchoAgent(kafka, tmp_path, "exactly-once")
    Feeder(kafka, agent.source).feed_to(REBALANCE_INPUTS)
    committed = EchoReader(kafka, agent.sink, committed=True)
    first = agent.start("replica-0")
    second: subprocess.Popen[bytes] | None = None
    try:
        run_until(committed, agent, lambda: len(committed.echoes) >= 200, "200 echoes", 120)
        agent.document["http"]["port"] = second_port = free_port()
        second = agent.start("replica-1")
        agent.process = first
        run_until(committed, agent, lambda: len(committed.echoes) >= 900, "900 echoes", 120)
        wait_ready(second_port, second, agent.log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, tail(agent.log)
        run_until(committed, agent, lambda: committed.poll() >= REBALANCE_INPUTS, "every echo", 180)
        agent.document["http"]["port"] = agent.port
        agent.stop()
    finally:
        ensure_stopped(first, second)
    committed.settle()
    committed.close()
    lost, duplicated = check_echoes(committed.echoes, REBALANCE_INPUTS)
    assert not lost, f"{len(lost)} inputs without an echo, e.g. {lost[:10]}"
    assert not duplicated, f"{len(duplicated)} inputs echoed twice, e.g. {list(duplicated)[:10]}"
    assert_in_key_order(committed.echoes)
