"""The trading job as the operator deploys it, on the secured broker, as a user with exactly
the operator's stream ACLs (:func:`chorus_operator.model.access.stream_acls`).

The job's config is the one in the FlinkDeployment the operator writes for a SCRAM cluster
(:func:`chorus_operator.model.streams.stream_deployment`): it names the SASL mechanism and
holds no secret; the login reaches the job as it reaches the pod, in
``KAFKA_SASL_JAAS_CONFIG``. With those ACLs alone, the job reads its input and commits its
signals and dead letters in transactions; its exactly-once sinks pool their transactional
ids, listing their own on start (Describe on the prefix), and keep reusing a few ids however
many checkpoints pass, where one new id per checkpoint would pile up on the broker.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from chorus_api.agent import Stream
from chorus_api.streams import resolve_stream
from chorus_api.topics import stream_group
from chorus_operator.model.access import stream_acls
from chorus_operator.model.inputs import OperatorSettings
from chorus_operator.model.streams import stream_deployment

from tests.flink.scenario import assert_signals, dead_letters, kafka_config, produce, signals
from tests.flink.test_restart import SENTINEL, wait_for
from tests.flink.test_trading import PARAMETERS, expected_outcome, script
from tests.services.acls import user_with_acls
from tests.services.flink import FlinkEnv
from tests.services.kafka import KafkaBroker, create_topics

pytestmark = pytest.mark.integration

CHECKPOINTS = 10
"""Completed checkpoints to wait for: more than the transactional ids a pooled sink uses."""


def completed(checkpoints: Path) -> int:
    """The number of the newest completed checkpoint (only the newest is retained), or 0."""
    found = (int(m.parent.name.removeprefix("chk-")) for m in checkpoints.glob("*/chk-*/_metadata"))
    return max(found, default=0)


def test_the_deployed_trading_job_needs_no_more_than_its_stream_acls(
    kafka_secured: KafkaBroker, flink: FlinkEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ns, name = f"lp{uuid.uuid4().hex[:8]}", "desk-signals"
    stream = Stream(
        name="signals",
        job="chorus_flink.jobs.trading",
        config={
            "trades_topic": f"{ns}.trades",
            "signals_topic": f"{ns}.signals",
            "dead_letter_topic": f"{ns}.trades.dlq",
            **PARAMETERS,
        },
    )
    resolved = resolve_stream(stream)
    create_topics(kafka_secured, [*resolved.inputs, *resolved.outputs], partitions=1)
    username = f"{ns}.desk"
    user = user_with_acls(
        kafka_secured, username, [acl.strimzi() for acl in stream_acls(ns, name, resolved)]
    )
    settings = OperatorSettings(
        agent_image="agent:1",
        flink_image="flink:1",
        bootstrap_servers=kafka_secured.bootstrap_servers,
        kafka_authentication="scram-sha-512",
    )
    manifest = stream_deployment(
        resolved,
        settings,
        name=name,
        namespace=ns,
        labels={},
        owner={},
        kafka_user=username,
        remote=False,
    )
    args = manifest["spec"]["job"]["args"]
    job, config = (
        args[args.index("chorus_flink.run") + 1],
        json.loads(args[args.index("--config") + 1]),
    )
    assert user.password is not None and user.password not in json.dumps(manifest)
    [env] = manifest["spec"]["podTemplate"]["spec"]["containers"][0]["env"]
    assert env["name"] == "KAFKA_SASL_JAAS_CONFIG"
    assert env["valueFrom"]["secretKeyRef"] == {"name": username, "key": "sasl.jaas.config"}
    # What Strimzi writes under that key, as the pod's environment would hold it.
    monkeypatch.setenv(env["name"], kafka_config(user)["kafka_properties"]["sasl.jaas.config"])

    values, reasons = script()
    expected, expected_letters = expected_outcome(values, reasons)
    produce(kafka_secured, stream.config["trades_topic"], [*values, SENTINEL])

    checkpoints = tmp_path / "checkpoints"
    running = flink.start_chorus_job(
        job,
        config,
        options={
            "execution.checkpointing.interval": "300 ms",
            "execution.checkpointing.dir": checkpoints.as_uri(),
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        },
    )
    try:
        wait_for(
            lambda: (
                set(expected) <= {s["id"] for s in signals(kafka_secured, f"{ns}.signals")}
                and len(dead_letters(kafka_secured, f"{ns}.trades.dlq")) >= len(expected_letters)
                and completed(checkpoints) >= CHECKPOINTS
            ),
            job=running,
            what=f"every signal and dead letter committed, {CHECKPOINTS} checkpoints",
        )
    finally:
        running.kill()

    assert_signals(signals(kafka_secured, f"{ns}.signals"), expected)
    assert dead_letters(kafka_secured, f"{ns}.trades.dlq") == expected_letters

    # The broker logs each transactional id it initialises: a few per sink, reused.
    prefix = re.escape(f"{stream_group(ns, name)}.")
    used = set(
        re.findall(
            rf"Initialized transactionalId ({prefix}\S+) with producerId",
            Path(kafka_secured.log_file).read_text(errors="replace"),
        )
    )
    done = completed(checkpoints)
    assert used, "the sinks initialised no transactional id under the granted prefix"
    assert len(used) < done, f"{len(used)} transactional ids for {done} checkpoints: {used}"
