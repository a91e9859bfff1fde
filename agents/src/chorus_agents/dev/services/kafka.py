"""A real single-node Kafka broker in KRaft mode, from Apache Kafka's jars on Maven Central.

The broker ``chorus dev up`` runs, and the tests' (``tests/services/kafka.py`` re-exports
this module). ``install`` resolves the jars pinned in ``kafka-pom.xml`` (package data beside
this module) into the cache once (keyed by the
pom's hash, so a version bump re-resolves); ``launch`` formats a fresh log directory and
starts one JVM that is both broker and controller, on free loopback ports.

:class:`KafkaService` (``kafka``) speaks PLAINTEXT. :class:`SecuredKafkaService`
(``kafka-secured``) is the same broker as the prod stack secures it: its client listener
takes SASL/SCRAM-SHA-512 only, KRaft's ``StandardAuthorizer`` decides, with
``allow.everyone.if.no.acl.found=false``, and the harness is the super user ``admin``,
whose SCRAM credential is written at format time (``kafka-storage format --add-scram``).
Users and ACLs are then made with the Admin API (:func:`create_user`, :func:`grant`), as
Strimzi's user operator does. :meth:`KafkaBroker.client_config` is how every test
builds its clients, so a test runs on either broker unchanged.

A subclass that sets :attr:`KafkaService.pod_host` (the test cluster's bridge address) gets a
broker that also listens there, for pods: see :func:`server_properties`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from chorus_agents.dev.services.base import (
    CACHE,
    REPO,
    Service,
    ServiceError,
    free_port,
    port_open,
    run_checked,
    spawn,
    wait_until,
)

if TYPE_CHECKING:
    from confluent_kafka import Message

POM = Path(__file__).with_name("kafka-pom.xml")
# A small broker that starts fast: the C1 compiler alone saves a few seconds of start-up (and
# some memory) on a busy machine, at a throughput cost that test loads do not notice.
JVM_OPTS = [
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:TieredStopAtLevel=1",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
# The format step is a short-lived JVM: the C1 compiler alone starts it faster.
FORMAT_JVM_OPTS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
STORAGE_TOOL = "kafka.tools.StorageTool"  # kafka-storage.sh's main class in Kafka 4.x
BROKER_MAIN = "kafka.Kafka"
LOG4J2 = """\
# Written by chorus_agents.dev.services.kafka: everything to one file, quiet below INFO.
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
"""

Isolation = Literal["read_committed", "read_uncommitted"]


@dataclass(frozen=True)
class KafkaBroker:
    """A running broker, as tests see it.

    Build clients from :meth:`client_config` rather than from ``bootstrap_servers`` alone,
    so that a test runs on the secured broker unchanged. On the secured broker the
    handle carries the super user's credentials; :meth:`as_user` is the same broker
    seen by another user.
    """

    bootstrap_servers: str
    pid: int
    log_file: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    pod_bootstrap_servers: str | None = None
    """The listener pods reach (``host:port`` on the test cluster's bridge), when there is one."""

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """librdkafka settings for a client of this broker, plus ``overrides``."""
        from chorus_agents.kafka import security_config

        return {
            "bootstrap.servers": self.bootstrap_servers,
            **security_config(
                self.security_protocol,
                sasl_mechanism=self.sasl_mechanism,
                username=self.username,
                password=self.password,
            ),
            **overrides,
        }

    def as_user(self, username: str, password: str) -> KafkaBroker:
        """This broker, reached as ``username`` (a SCRAM user, see :func:`create_user`)."""
        return replace(self, username=username, password=password)


JAR_LIST = "jars.txt"
"""Written into a resolved jars directory: the jars Maven copied, so a check can tell a
directory that lost one (a cache cleaned by hand) from a whole one."""


def maven_jars_dir(pom: Path, root: Path) -> Path:
    """Where the jars of ``pom`` are (or will be) resolved: ``root/jars-<pom hash>/``."""
    return root / f"jars-{hashlib.sha256(pom.read_bytes()).hexdigest()[:16]}"


def resolve_maven_jars(pom: Path, root: Path, *, log: Path) -> Path:
    """The jars ``pom`` depends on, copied once into :func:`maven_jars_dir`.

    The directory appears complete or not at all: Maven copies into a temporary sibling
    that is renamed at the end, so an interrupted run leaves nothing half-resolved behind,
    and two sessions resolving at once both end with the same directory. A directory
    without its :data:`JAR_LIST` (made before the list existed) is resolved again.
    """
    jars = maven_jars_dir(pom, root)
    if (jars / JAR_LIST).is_file():
        return jars
    shutil.rmtree(jars, ignore_errors=True)
    partial = root / f".{jars.name}.{os.getpid()}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    run_checked(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}",
        ],
        what=f"resolving the jars of {shown(pom)}",
        log=log,
    )
    names = sorted(path.name for path in partial.glob("*.jar"))
    if not names:
        raise ServiceError(f"resolving {shown(pom)}: Maven copied no jars to {partial}")
    (partial / JAR_LIST).write_text("".join(f"{name}\n" for name in names))
    try:
        partial.rename(jars)
    except OSError:  # another session finished first: keep its copy
        shutil.rmtree(partial, ignore_errors=True)
        if not jars.is_dir():
            raise
    return jars


def check_maven_jars(pom: Path, root: Path, *, what: str) -> Path:
    """The resolved jars of ``pom``; raises ServiceError naming the missing path and the fix
    unless every jar Maven copied there is still there."""
    jars = maven_jars_dir(pom, root)
    listed = jars / JAR_LIST
    fix = f"remove {jars} and run again to resolve them from Maven Central"
    if not listed.is_file():
        raise ServiceError(
            f"{what}: the jars of {shown(pom)} are not resolved ({listed} is missing); {fix}"
        )
    missing = [jars / name for name in listed.read_text().split() if not (jars / name).is_file()]
    if missing:
        raise ServiceError(f"{what}: missing jar(s) {', '.join(map(str, missing))}; {fix}")
    return jars


def shown(path: Path) -> str:
    """``path`` relative to the checkout when it is in it (shorter messages), else whole."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def cluster_id() -> str:
    """A random KRaft cluster id, as ``kafka-storage random-uuid`` prints it."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):  # Kafka's Uuid.randomUuid avoids these too
            return text


def server_properties(
    *,
    port: int,
    controller_port: int,
    data: Path,
    secured: bool = False,
    pod_listener: str | None = None,
) -> dict[str, str]:
    """The broker's configuration: one node that is broker and controller, replication 1.

    ``pod_listener`` (``host:port``): a second client listener, ``POD``, with the same
    security, on an address pods reach (the test cluster's bridge), advertised as it is.
    Kafka answers each client with the addresses of the listener it came in on, so a pod
    that bootstraps there is never told about loopback.

    ``secured``: the client (and inter-broker) listener is SASL_PLAINTEXT with
    SCRAM-SHA-512 on loopback, and the StandardAuthorizer denies what no ACL allows.
    The controller listener stays PLAINTEXT on loopback (SCRAM credentials live in the
    metadata log the controller serves, so it cannot authenticate with them); its
    principal is ``User:ANONYMOUS``, a super user there only, since the client
    listener accepts no unauthenticated connection.
    """
    client = "SASL_PLAINTEXT" if secured else "PLAINTEXT"
    listeners = [f"{client}://127.0.0.1:{port}"]
    protocols = f"{client}:{client},CONTROLLER:PLAINTEXT"
    if pod_listener is not None:
        listeners.append(f"{POD_LISTENER}://{pod_listener}")
        protocols += f",{POD_LISTENER}:{client}"
    properties = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{controller_port}"]),
        "advertised.listeners": ",".join(listeners),
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": protocols,
        "log.dirs": str(data),
        "num.partitions": "1",
        # One node: internal topics cannot be replicated, and few partitions start faster.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "min.insync.replicas": "1",
        "group.initial.rebalance.delay.ms": "0",
        # As the platform's brokers (infra): a killed agent's transaction is aborted
        # within about a second of its 8 s timeout.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    }
    if secured:
        properties |= {
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
        }
    return properties


SCRAM = "SCRAM-SHA-512"
ADMIN = "admin"
POD_LISTENER = "POD"
"""The secured broker's super user: the harness, as Strimzi's operators are."""


def _jaas(username: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{username}" password="{password}";'
    )


class KafkaService(Service[KafkaBroker]):
    name = "kafka"
    handle_type = KafkaBroker
    secured = False
    pod_host: str | None = None
    """An address of this machine that pods reach: the broker listens there too (listener
    ``POD``), and the handle's ``pod_bootstrap_servers`` names it. It must exist first."""

    @property
    def home(self) -> Path:
        return CACHE / "kafka"  # the secured broker runs the same jars

    @property
    def install_log(self) -> Path:
        return self.home / "install.log"

    def libs(self) -> Path:
        return resolve_maven_jars(POM, self.home, log=self.install_log)

    def install(self) -> None:
        if shutil.which("java") is None or shutil.which("mvn") is None:
            raise ServiceError("kafka: needs java (17+) and mvn on PATH (scripts/prereqs.sh)")
        self.libs()

    def check(self) -> None:
        if shutil.which("java") is None:
            raise ServiceError("kafka: needs java (17+) on PATH (scripts/prereqs.sh)")
        check_maven_jars(POM, self.home, what="kafka")

    def launch(self, workdir: Path) -> tuple[subprocess.Popen[bytes], KafkaBroker]:
        port, controller_port = free_port(), free_port()
        pod_listener = f"{self.pod_host}:{free_port()}" if self.pod_host else None
        data = workdir / "data"
        config = workdir / "server.properties"
        properties = server_properties(
            port=port,
            controller_port=controller_port,
            data=data,
            secured=self.secured,
            pod_listener=pod_listener,
        )
        password = secrets.token_urlsafe(18)
        scram: list[str] = []
        if self.secured:
            for listener in ["sasl_plaintext"] + ([POD_LISTENER.lower()] if pod_listener else []):
                properties[f"listener.name.{listener}.{SCRAM.lower()}.sasl.jaas.config"] = _jaas(
                    ADMIN, password
                )
            scram = ["--add-scram", f"{SCRAM}=[name={ADMIN},password={password}]"]
        config.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        log4j = workdir / "log4j2.properties"
        server_log = workdir / "server.log"
        log4j.write_text(LOG4J2.format(log=server_log))
        java = ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{self.libs()}/*"]
        run_checked(
            [
                *java,
                *FORMAT_JVM_OPTS,
                STORAGE_TOOL,
                "format",
                "--cluster-id",
                cluster_id(),
                "--config",
                str(config),
                "--standalone",
                *scram,
            ],
            what="kafka: formatting the log directory",
            log=workdir / "format.log",
        )
        console = workdir / "console.log"
        process = spawn([*java, *JVM_OPTS, BROKER_MAIN, str(config)], log=console, cwd=workdir)
        broker = KafkaBroker(
            bootstrap_servers=f"127.0.0.1:{port}",
            pid=process.pid,
            log_file=str(server_log),
            pod_bootstrap_servers=pod_listener,
        )
        if self.secured:
            broker = replace(
                broker,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=SCRAM,
                username=ADMIN,
                password=password,
            )
        try:
            wait_until(
                lambda: healthy(broker),
                what="kafka: broker",
                timeout=90,
                process=process,
                log=server_log if server_log.exists() else console,
            )
        except ServiceError:
            process.kill()
            raise
        return process, broker


class SecuredKafkaService(KafkaService):
    """The broker with SASL/SCRAM-SHA-512 and the StandardAuthorizer; see the module docstring."""

    name = "kafka-secured"
    secured = True


def create_user(broker: KafkaBroker, username: str, *, timeout: float = 30.0) -> KafkaBroker:
    """Creates SCRAM-SHA-512 user ``username`` with a random password (as Strimzi's user
    operator does for a KafkaUser); returns the broker as that user, once it can log in."""
    from confluent_kafka.admin._scram import (  # not re-exported for type checkers
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    password = secrets.token_urlsafe(18)
    upsert = UserScramCredentialUpsertion(
        username, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode()
    )
    client = admin(broker)  # kept referenced: a collected client cancels its futures
    for future in client.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=timeout)
    user = broker.as_user(username, password)

    def logs_in() -> bool:
        probe = admin(user, log_level=0)
        probe.list_topics(timeout=2)
        return True

    wait_until(logs_in, what=f"kafka user {username}: login", timeout=timeout)
    return user


def grant(broker: KafkaBroker, bindings: Iterable[Any], *, timeout: float = 30.0) -> None:
    """Creates the ACLs (confluent-kafka ``AclBinding``s) and waits until the broker has them."""
    from confluent_kafka.admin._acl import AclBindingFilter  # not re-exported for mypy

    bindings = list(bindings)
    client = admin(broker)
    for binding, future in client.create_acls(bindings).items():
        try:
            future.result(timeout=timeout)
        except Exception as exc:
            raise ServiceError(f"kafka ACL {binding}: not created: {exc}") from exc

    def present() -> bool:
        for binding in bindings:
            match = AclBindingFilter(
                binding.restype,
                binding.name,
                binding.resource_pattern_type,
                binding.principal,
                binding.host,
                binding.operation,
                binding.permission_type,
            )
            if not client.describe_acls(match).result(timeout=5):
                return False
        return True

    wait_until(present, what=f"kafka: {len(bindings)} ACL(s) in effect", timeout=timeout)


def admin(broker: KafkaBroker, **overrides: Any) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient(broker.client_config(**overrides))


def healthy(broker: KafkaBroker) -> bool:
    """The broker listens, answers metadata requests, and the cluster has its one node."""
    if not port_open(int(broker.bootstrap_servers.rsplit(":", 1)[1])):
        return False  # asking librdkafka now would only log connection errors
    # Kept referenced: a collected client cancels its futures. Quiet: it is short-lived.
    client = admin(broker, log_level=3)
    cluster = client.describe_cluster(request_timeout=2).result(timeout=5)
    return len(cluster.nodes) == 1 and cluster.controller is not None


def create_topics(
    broker: KafkaBroker,
    names: Iterable[str],
    *,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    exist_ok: bool = False,
) -> None:
    """Creates the topics (replication 1) and waits until each has a leader everywhere.

    ``exist_ok``: a topic that exists already (another test process made it a moment
    before) is no error."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.cimpl import NewTopic

    names = list(names)
    client = admin(broker)
    futures = client.create_topics(
        [
            NewTopic(
                name, num_partitions=partitions, replication_factor=1, config=dict(config or {})
            )
            for name in names
        ],
        operation_timeout=timeout,
    )
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
        except Exception as exc:
            exists = (
                isinstance(exc, KafkaException)
                and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS
            )
            if exist_ok and exists:
                continue
            raise ServiceError(f"kafka topic {name}: not created: {exc}") from exc

    def led() -> bool:
        topics = client.list_topics(timeout=5).topics
        return all(
            name in topics
            and len(topics[name].partitions) == partitions
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        )

    wait_until(led, what=f"kafka topics {names}: leaders", timeout=timeout)


def read_topic(
    broker: KafkaBroker,
    topic: str,
    *,
    isolation: Isolation = "read_committed",
    timeout: float = 60.0,
) -> list[Message]:
    """Every record of ``topic`` from the beginning to the current end of each partition.

    The end is the high watermark, or for ``read_committed`` the last stable offset, so an
    open transaction's records are not waited for. Records come in partition order
    within a partition (``confluent_kafka.Message`` objects); no offsets are committed.
    """
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer(
        broker.client_config(
            **{
                "group.id": f"chorus-test-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": isolation,
            }
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise ServiceError(f"kafka topic {topic}: {metadata.error}")
        partitions = sorted(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        pending = set(partitions)
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"kafka topic {topic}: partitions {sorted(pending)} not read to the end "
                    f"after {timeout:.0f}s ({len(records)} records so far)"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            else:
                raise ServiceError(f"kafka topic {topic}: {error}")
        return records
    finally:
        consumer.close()
