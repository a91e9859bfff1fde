"""Throughput of the Flink signal jobs and latency of the trading job, beside a plain Python
consumer.

    .venv/bin/python -m bench.flink                     # 200,000 events, both jobs, p=1 and 2
    .venv/bin/python -m bench.flink --skip-latency \
        --jobs trading,maintenance,customer_service,traffic,icu
    .venv/bin/python -m bench.flink --events 400000 --set pipeline.object-reuse=true
    .venv/bin/python -m bench.flink --baseline-src /tmp/before/src \
        --compare chorus.watermark.emit-strategy=on-periodic \
        --compare "pipeline.object-reuse=true;chorus.watermark.emit-strategy=on-periodic"

**Variants.** ``--baseline-src DIR`` also runs each job with the ``chorus_flink`` package
found in ``DIR`` (e.g. ``flink/src`` of the previous commit, copied aside), ``--compare
KEY=VALUE[;KEY=VALUE]`` also runs it with those Flink options (each ``--compare`` one more
variant); the variants' runs alternate, so a change in the machine's load hits each alike.
The baseline tree is put first on ``PYTHONPATH``; a tree that has ``chorus_flink.udf`` needs
its ``flink/udf`` beside its ``src`` (copy ``flink/src`` and ``flink/udf`` together).

**Throughput.** For each job of ``--jobs`` (trading and maintenance unless told; also
customer_service, traffic and icu) and parallelism (1 and 2): pre-load ``--events`` valid
records (keyed by 50 symbols, machines, conversations, road segments or patients, 10 ms of
event time apart) into a fresh 2-partition topic, run the job bounded in a mini-cluster, and
read its signals and dead letters (none expected). *Steady* events/s comes from the signals'
Kafka timestamps: a signal about event time ``T`` is emitted once the watermark passes
``T``, that is once the input up to ``T + watermark delay`` is read, so between the first
and the last signal the job read the events between those two points (the last signals of
a bounded run fire at the end of the input). This leaves out the JVM and mini-cluster
start, the job's deployment and its final checkpoint and shutdown, which *wall* (the
runner's "submitted" line to the end) keeps. *Events per CPU s* divides the events by the CPU
time (user + system, ``/proc``) of the driver and its mini-cluster JVM over the whole run;
*per CPU s (steady)* divides the steady part's events by the CPU time spent between the
first and the last signal (sampled every 0.2 s): the per-record cost, which on a shared
machine is steadier than events/s, and which the fixed cost of starting a JVM and planning
(some 20 CPU s) does not dilute. So that each job emits signals to time, over the whole
input: the maintenance input has an outlier every 1,000 readings, the customer-service one a
furious customer every 1,000 messages (a ``sentiment_drop``); traffic and icu run with 10 s
windows (not their default 60 s, to signal every 1,000 records) and each window jams two
adjacent segments of the 50 in a line (the job's ``neighbours``), or takes one patient's
NEWS2 score to medium.

Beside trading, in the same run, a confluent-kafka consumer in this process reads the same
topic and keeps the same aggregate per symbol and 60 s HOP window (sum of price x quantity,
sum of quantity: each trade in 6 windows); the ratio is Flink steady / Python.

**Latency.** The trading job unbounded (``--latency-parallelism``), watermark delay 0 and
spike threshold 0, so every trade after a symbol's first yields a ``price_spike`` signal as
soon as the watermark reaches it; trades are produced at ``--rate`` per second for
``--warmup`` + ``--seconds``. The trades are made (JSON) before the clock starts, and sent on
schedule, all those due at once, so the load generator costs little more than ``produce``.
The latency of a trade is the time its signal is received by a consumer minus the trade's
Kafka timestamp (set when it was produced), for a ``read_uncommitted`` and a
``read_committed`` consumer; the trades of the first ``--warmup`` seconds are sent but not
timed (the JIT compiles the job's hot paths under the load: at 50,000 trades/s the first
10 s or so run seconds behind). ``read_committed`` waits for the checkpoint
that commits the transaction, so it adds up to ``--checkpoint`` on top. Window signals
(``vwap``) add the watermark delay and the window's length to this. With ``--spike-every N``
the threshold stays at its default (2 %) and one trade in N (at random) is a spike: the
signals are as rare as in use, so a high ``--rate`` measures the latency of a loaded job
rather than of its signal writer; only the spikes are timed. The table also gives the rate
the producer achieved and the CPU (cores) of the job, the broker and this process while the
trades came in. Event times follow the send schedule up to 1,000 trades/s; above, each is
1 ms after the last (a tie would be late with no watermark delay), so event time runs ahead
of the wall clock; the latency, taken from Kafka timestamps, does not depend on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from chorus_agents.icu.news2 import PARAMETERS as VITAL_ORDER  # NEWS2's, in chart order
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from tests.services.flink import FLINK, FlinkEnv, FlinkService
from tests.services.kafka import KafkaBroker, KafkaService, create_topics, read_topic

app = typer.Typer(add_completion=False)
console = Console(width=170)  # a wide table stays whole when the output is a file
BASE = datetime(2026, 1, 1, 9, 0, 0)
STEP = timedelta(milliseconds=10)
DELAY = timedelta(seconds=5)
JVM_ARGS = os.environ.get("CHORUS_BENCH_JVM_ARGS", "-Xms512m -Xmx1g -XX:+UseG1GC")
"""The mini-cluster JVM; ``CHORUS_BENCH_JVM_ARGS`` replaces it (e.g. to add a flight recording)."""
ISOLATIONS = ("read_uncommitted", "read_committed")


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds") + "Z"


def trades(n: int) -> list[tuple[str, str]]:
    """(key, value) of ``n`` trades of 50 symbols around 100, no spikes."""
    rng = random.Random(1)
    found = []
    for i in range(n):
        symbol = f"S{i % 50}"
        value = {
            "symbol": symbol,
            "price": round(100 + rng.uniform(-1, 1), 2),
            "quantity": rng.randint(1, 100),
            "event_time": iso(BASE + STEP * i),
        }
        found.append((symbol, json.dumps(value)))
    return found


def telemetry(n: int) -> list[tuple[str, str]]:
    """(key, value) of ``n`` readings of 50 machines, an outlier every 1,000 readings."""
    rng = random.Random(2)
    found = []
    for i in range(n):
        machine = f"m{i % 50}"
        value = {
            "machine_id": machine,
            "vibration": 5.0 if i % 1000 == 999 else rng.uniform(0.9, 1.1),
            "temperature": rng.uniform(59, 61),
            "event_time": iso(BASE + STEP * i),
        }
        found.append((machine, json.dumps(value)))
    return found


WINDOW = timedelta(seconds=10)
"""The traffic and ICU jobs' ``window_seconds`` in the bench (their default is 60 s): they
signal per window, not per record, so a window every 1,000 records times them as finely as the
maintenance outliers. A traffic jam, or a patient's deterioration, lasts one window."""


AGENT_LINES = ("Let me check that for you.", "Thanks, one moment please.", "It is fixed now.")
CUSTOMER_LINES = ("ok", "Thanks, that works.", "Sounds good.", "Great, thank you!")


def messages(n: int) -> list[tuple[str, str]]:
    """(key, value) of ``n`` chat messages in 50 conversations, a furious customer every 1,000.

    Rounds of 50 records, one message per conversation, alternate between the customers and
    the agents (0.5 s apart: every wait is answered). Customers carry an upstream
    ``sentiment`` (0.6 to 0.9), agents only ``text``, which the job scores with its lexicon
    UDF. The outlier, a customer's -1, drops the trend over the last 3 customer messages by
    (0.6 + 1) / 3 or more: a ``sentiment_drop`` over the default 0.5, and only the one.
    """
    rng = random.Random(4)
    found = []
    for i in range(n):
        conversation = f"c{i % 50}"
        value: dict[str, Any] = {
            "conversation_id": conversation,
            "customer_id": f"cust-{i % 50}",
            "event_time": iso(BASE + STEP * i),
        }
        if (i // 50) % 2:
            value |= {"role": "agent", "text": rng.choice(AGENT_LINES)}
        else:
            outlier = i % 1000 == 500  # an even round: a customer's
            value |= {
                "role": "customer",
                "text": "This is useless" if outlier else rng.choice(CUSTOMER_LINES),
                "sentiment": -1.0 if outlier else round(rng.uniform(0.6, 0.9), 3),
            }
        found.append((conversation, json.dumps(value)))
    return found


ROAD = json.dumps({f"s{k}": [f"s{k + 1}"] for k in range(49)})
"""The traffic job's ``neighbours``: segments s0 - s1 - ... - s49 in a line."""


def readings(n: int) -> list[tuple[str, str]]:
    """(key, value) of ``n`` loop-detector readings of 50 segments in a line (:data:`ROAD`),
    each :data:`WINDOW` a jam on a pair of adjacent segments: two ``congestion`` signals and an
    ``incident`` a window.

    Free flow is 40 to 60 km/h, a jam 5 to 20 (below the default 0.5 x 50); 3 to 8 vehicles
    a reading, 20 readings a segment and window (over the default 10 vehicles).
    """
    rng = random.Random(5)
    found = []
    for i in range(n):
        segment, at = i % 50, BASE + STEP * i
        jammed = segment // 2 == (at - BASE) // WINDOW % 25
        value = {
            "segment_id": f"s{segment}",
            "vehicle_count": rng.randint(3, 8),
            "avg_speed_kmh": round(rng.uniform(5, 20) if jammed else rng.uniform(40, 60), 1),
            "event_time": iso(at),
        }
        found.append((f"s{segment}", json.dumps(value)))
    return found


def vitals(n: int) -> list[tuple[str, str]]:
    """(key, value) of ``n`` observations of 50 patients, each :data:`WINDOW` one of them
    medium.

    Patient ``i % 50`` reports the parameters in chart order, one per record (a complete set
    every 3.5 s), scoring 0 on the NEWS2 chart; for a window in turn, a patient's respiration
    rate (21 to 24), pulse (111 to 130) and temperature (38.2 to 38.9) score 5, medium. The
    job's window ending there (it scores the latest values) yields a ``news2_score`` and a
    ``deterioration``, the next a ``news2_score`` back to 0; and each patient's first
    complete window a ``news2_score``.
    """
    rng = random.Random(6)
    found = []
    for i in range(n):
        patient, at = i % 50, BASE + STEP * i
        medium = patient == (at - BASE) // WINDOW % 50
        parameter = VITAL_ORDER[(i // 50) % len(VITAL_ORDER)]
        reading: float | str
        match parameter:
            case "respiration_rate":
                reading = rng.randint(21, 24) if medium else rng.randint(12, 20)
            case "spo2":
                reading = rng.randint(96, 100)
            case "supplemental_oxygen":
                reading = "air"
            case "systolic_bp":
                reading = rng.randint(111, 140)
            case "pulse":
                reading = rng.randint(111, 130) if medium else rng.randint(55, 85)
            case "consciousness":
                reading = "A"
            case _:  # temperature
                reading = round(rng.uniform(38.2, 38.9) if medium else rng.uniform(36.5, 37.5), 1)
        value = {
            "patient_id": f"p{patient}",
            "parameter": parameter,
            "value": reading,
            "event_time": iso(at),
        }
        found.append((f"p{patient}", json.dumps(value)))
    return found


@dataclass(frozen=True)
class Input:
    """A job's bench input: its generator, the config key of its input topic, other config."""

    make: Callable[[int], list[tuple[str, str]]]
    topic_key: str
    config: dict[str, str] = field(default_factory=dict)


INPUTS = {
    "trading": Input(trades, "trades_topic"),
    "maintenance": Input(telemetry, "telemetry_topic"),
    "customer_service": Input(messages, "messages_topic"),
    "traffic": Input(
        readings,
        "readings_topic",
        {"neighbours": ROAD, "window_seconds": str(WINDOW.seconds)},
    ),
    # a 5-window horizon, as the default 60 s slide over 300 s: each record in 5 windows
    "icu": Input(
        vitals,
        "vitals_topic",
        {"window_seconds": str(WINDOW.seconds), "missing_after_seconds": str(5 * WINDOW.seconds)},
    ),
}


def load(kafka: KafkaBroker, topic: str, records: list[tuple[str, str]]) -> None:
    producer = Producer(kafka.client_config(**{"linger.ms": 20, "enable.idempotence": True}))
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise SystemExit(f"bench: could not load {topic}")


@dataclass
class Job:
    """A running ``chorus_flink.run`` process; ``submitted`` is when it printed its job id."""

    process: subprocess.Popen[str]
    logs: Path
    submitted: float | None = None
    output: list[str] = field(default_factory=list)

    def follow(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "submitted as" in line and self.submitted is None:
                self.submitted = time.monotonic()


def start(
    flink: FlinkEnv,
    job: str,
    config: dict[str, Any],
    options: dict[str, str],
    source: Path | None = None,
) -> Job:
    """Starts ``chorus_flink.run job``; ``source`` puts another ``chorus_flink`` tree first."""
    args = [flink.python, "-m", "chorus_flink.run", job, "--config", json.dumps(config)]
    for key, value in options.items():
        args += ["--set", f"{key}={value}"]
    logs = Path(flink.log_dir) / f"bench-{job}-{time.time_ns()}"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**flink.environment(logs), "JVM_ARGS": JVM_ARGS}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=FLINK,
        env=env,
        start_new_session=True,
    )
    running = Job(process, logs)
    threading.Thread(target=running.follow, daemon=True).start()
    return running


def fail(job: Job, what: str) -> SystemExit:
    return SystemExit(f"bench: {what} (logs in {job.logs})\n{''.join(job.output[-40:])}")


@dataclass(frozen=True)
class Throughput:
    wall: float
    steady: float
    signals: int
    cpu: float
    """CPU seconds (user + system) of the driver and its mini-cluster JVM, the whole run."""
    steady_cpu: float
    """Their CPU seconds between the first and the last signal (the steady part)."""
    steady_events: int
    """The events read between the first and the last signal."""
    dead_letters: int = 0
    """Records the job rejected: the bench's inputs are all valid, so more than 0 is a bug."""

    @property
    def steady_per_cpu(self) -> float:
        """Events per CPU second in the steady part: the per-record cost, without the JVM's
        start, the planning and the shutdown (which weigh on ``cpu`` for short runs)."""
        return self.steady_events / self.steady_cpu if self.steady_cpu > 0 else 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time so far of process ``pid`` and its descendants (Linux ``/proc``)."""
    total, stack = 0.0, [pid]
    while stack:
        at = stack.pop()
        try:
            stat = Path(f"/proc/{at}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / CLOCK_TICKS  # utime, stime
            for task in Path(f"/proc/{at}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


class CpuSampler(threading.Thread):
    """Samples :func:`cpu_seconds` of a process tree every 0.2 s; ``peak`` is the last total.

    Under a shared machine's load, events per CPU second is steadier than events per second.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak = pid, 0.0
        self.samples: list[tuple[float, float]] = []
        """(wall clock in ms, CPU seconds so far), to match the signals' Kafka timestamps."""
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, cpu_seconds(self.pid))
            self.samples.append((time.time() * 1000, self.peak))

    def at(self, ms: float) -> float:
        """CPU seconds at wall-clock time ``ms``, interpolated between samples."""
        before = [s for s in self.samples if s[0] <= ms]
        after = [s for s in self.samples if s[0] >= ms]
        if not before:
            return after[0][1] if after else 0.0
        if not after:
            return before[-1][1]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (ms - t0) / (t1 - t0)


def run_bounded(
    kafka: KafkaBroker,
    flink: FlinkEnv,
    job: str,
    config: dict[str, Any],
    options: dict[str, str],
    events: int,
    source: Path | None = None,
) -> Throughput:
    running = start(flink, job, {**config, "bounded": True}, options, source)
    sampler = CpuSampler(running.process.pid)
    sampler.start()
    code = running.process.wait()
    end = time.monotonic()
    sampler.done.set()
    time.sleep(0.2)  # let the reader thread see the last lines
    if code != 0 or running.submitted is None:
        raise fail(running, f"job {job} failed")
    found = []
    for message in read_topic(kafka, config["signals_topic"], isolation="read_committed"):
        value = message.value()
        assert value is not None
        event_time = datetime.fromisoformat(json.loads(value)["time"][:-1])
        found.append((message.timestamp()[1], event_time))
    if len(found) < 2:
        raise fail(running, f"job {job}: {len(found)} signals, cannot time it")
    first, last = min(found), max(found)

    def read_by(at: datetime) -> int:
        return min(events, max(0, (at + DELAY - BASE) // STEP + 1))

    steady_events = read_by(last[1]) - read_by(first[1])
    steady = steady_events / ((last[0] - first[0]) / 1000)
    steady_cpu = sampler.at(last[0]) - sampler.at(first[0])
    rejected = read_topic(kafka, config["dead_letter_topic"], isolation="read_committed")
    return Throughput(
        end - running.submitted,
        steady,
        len(found),
        sampler.peak,
        steady_cpu,
        steady_events,
        len(rejected),
    )


def python_vwap(kafka: KafkaBroker, topic: str, n: int) -> float:
    """Trades/s of a plain consumer keeping sum(p x q) and sum(q) per symbol and HOP window."""
    consumer = Consumer(
        kafka.client_config(
            **{"group.id": f"bench-{uuid.uuid4().hex[:6]}", "enable.auto.commit": False}
        )
    )
    partitions = consumer.list_topics(topic).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    sums: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    seen, start_at = 0, time.monotonic()
    while seen < n:
        for message in consumer.consume(1000, timeout=1.0):
            error, value = message.error(), message.value()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise SystemExit(str(error))
                continue
            if value is None:
                continue
            trade = json.loads(value)
            at = datetime.fromisoformat(trade["event_time"][:-1])
            slide = int((at - BASE).total_seconds()) // 10
            amount = trade["price"] * trade["quantity"]
            for window in range(slide - 5, slide + 1):  # 60 s windows every 10 s
                total = sums[(trade["symbol"], window)]
                total[0] += amount
                total[1] += trade["quantity"]
            seen += 1
    consumer.close()
    return n / (time.monotonic() - start_at)


class Receiver(threading.Thread):
    """Reads a signal topic, noting when each ``price_spike`` arrived (ms) by its input."""

    def __init__(self, kafka: KafkaBroker, topic: str, isolation: str) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            kafka.client_config(
                **{
                    "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                    "isolation.level": isolation,
                    "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": 10,
                    "enable.auto.commit": False,
                }
            )
        )
        self.consumer.subscribe([topic])
        self.arrived: dict[tuple[int, int], float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            # poll, not consume(n, timeout): a batch is handed over only when full or timed
            # out, which added up to its timeout to the first signals of each batch
            message = self.consumer.poll(0.1)
            now = time.time() * 1000
            if message is None:
                continue
            value = message.value()
            if message.error() is None and value is not None:
                signal = json.loads(value)
                if signal["kind"] == "price_spike":
                    partition, offset = signal["id"].rsplit(":", 1)[1].split("-")
                    self.arrived[(int(partition), int(offset))] = now
        self.consumer.close()


@dataclass(frozen=True)
class Latency:
    isolation: str
    p50: float
    p99: float
    count: int
    rate: float
    """Trades produced per second, as achieved (the producer may fall short of ``--rate``)."""
    cores: float
    """The job's CPU seconds per second (driver and mini-cluster) while trades came in."""
    broker_cores: float
    """The broker's, likewise."""
    own_cores: float
    """The benchmark's own (the trade producer and the two receivers), likewise."""


def latency_trades(rate: int, total: int, spike_every: int) -> tuple[list[tuple[str, bytes]], int]:
    """The latency run's trades as (key, value) records, made before the clock starts so
    that sending one costs only ``produce``; and how many are spikes.

    Prices are around 100 (within 1 %); with ``spike_every`` > 0 one trade in that many (at
    random) is at 110, a spike for the default 2 % threshold. Event times are strictly
    increasing (with no watermark delay a tie would be late): on the send schedule up to
    1,000 trades/s, 1 ms apart above it.
    """
    rng = random.Random(3)
    start = datetime.now(UTC).replace(tzinfo=None)
    symbols = [f"S{i}" for i in range(20)]
    records, spikes = [], 0
    for i in range(total):
        symbol = symbols[i % 20]
        price = round(100 + rng.uniform(-1, 1), 2)
        if spike_every and rng.randrange(spike_every) == 0:
            price, spikes = 110.0, spikes + 1
        at = start + timedelta(milliseconds=max(i, i * 1000 // rate))
        value = {"symbol": symbol, "price": price, "quantity": rng.randint(1, 100)}
        records.append((symbol, json.dumps({**value, "event_time": iso(at)}).encode()))
    return records, spikes


def send_on_schedule(
    producer: Producer, topic: str, records: list[tuple[str, bytes]], rate: int
) -> float:
    """Produces ``records`` at ``rate`` per second (each as soon as it is due, those due
    together in one go, then a sleep of at least 1 ms); returns the seconds it took."""
    begin, sent = time.monotonic(), 0
    while sent < len(records):
        due = min(len(records), int((time.monotonic() - begin) * rate) + 1)
        for key, value in records[sent:due]:
            producer.produce(topic, key=key, value=value)
        sent = due
        producer.poll(0)
        time.sleep(max(begin + sent / rate - time.monotonic(), 0.001))
    producer.flush(30)
    return time.monotonic() - begin


def run_latency(
    kafka: KafkaBroker,
    flink: FlinkEnv,
    *,
    parallelism: int,
    rate: int,
    seconds: int,
    warmup: int,
    spike_every: int,
    options: dict[str, str],
    tree: Path | None = None,
    trace: Path | None = None,
) -> list[Latency]:
    """One latency run; ``tree`` puts another ``chorus_flink`` first (as :func:`start`);
    ``trace`` gets a CSV line per timed trade: run, consumer, produced (ms), latency (ms)."""
    run = uuid.uuid4().hex[:6]
    source = f"bench.latency.{run}"
    create_topics(kafka, [source, f"{source}.signals", f"{source}.dlq"], partitions=2)
    config = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "trades_topic": source,
        "signals_topic": f"{source}.signals",
        "dead_letter_topic": f"{source}.dlq",
        "group_id": f"bench-latency-{run}",
        "watermark_delay_seconds": "0",
    }
    if not spike_every:
        config["spike_threshold"] = "0"  # every trade after a symbol's first is a signal
    records, spikes = latency_trades(rate, rate * (warmup + seconds), spike_every)
    # Checkpoints to files, as deployed: the mini-cluster's default keeps them in the
    # JobManager's memory, at most 5 MB of state, which the spike function's state passes
    # at 50,000 trades/s (event time then runs 50 s a second, so a window is dense).
    checkpoints = Path(flink.log_dir) / f"checkpoints-{run}"
    settings = {
        "parallelism.default": str(parallelism),
        "execution.checkpointing.dir": checkpoints.as_uri(),
        **options,
    }
    running = start(flink, "trading", config, settings, tree)
    receivers = [Receiver(kafka, f"{source}.signals", i) for i in ISOLATIONS]
    try:
        deadline = time.monotonic() + 120
        while running.submitted is None:
            if running.process.poll() is not None or time.monotonic() > deadline:
                raise fail(running, "latency job did not start")
            time.sleep(0.2)
        time.sleep(5)  # the tasks deploy after the submission
        for receiver in receivers:
            receiver.start()
        # linger 5 ms: a request per trade cost the producer and the broker more CPU than the
        # job at 5,000 trades/s; the 5 ms count in the latency (timestamps are taken at send)
        producer = Producer(kafka.client_config(**{"linger.ms": 5, "enable.idempotence": True}))
        total = len(records)
        sampler = CpuSampler(running.process.pid)
        sampler.start()
        broker_cpu, own_cpu = cpu_seconds(kafka.pid), time.process_time()
        produced_in = send_on_schedule(producer, source, records, rate)
        broker_cores = (cpu_seconds(kafka.pid) - broker_cpu) / produced_in
        own_cores = (time.process_time() - own_cpu) / produced_in
        sampler.done.set()
        sampler.join()
        first, last = sampler.samples[0], sampler.samples[-1]
        cores = (last[1] - first[1]) / max((last[0] - first[0]) / 1000, 1e-9)
        wanted = spikes if spike_every else total - 40
        drain = time.monotonic() + 30
        while time.monotonic() < drain and len(receivers[1].arrived) < wanted:
            if running.process.poll() is not None:
                raise fail(running, "latency job ended")
            time.sleep(0.5)
    finally:
        for receiver in receivers:
            receiver.stop.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.process.pid, signal.SIGKILL)
        running.process.wait()
    produced = {
        (m.partition(), m.offset()): m.timestamp()[1]
        for m in read_topic(kafka, source, isolation="read_uncommitted")
    }
    order = sorted(produced.values())
    warm = order[min(len(order) - 1, rate * warmup)]  # the first timed trade's timestamp
    results = []
    for receiver, isolation in zip(receivers, ISOLATIONS, strict=True):
        receiver.join(5)
        if trace is not None:  # when each timed trade was produced, and its latency
            with trace.open("a") as out:
                for key, at in sorted(receiver.arrived.items(), key=lambda i: i[1]):
                    if key in produced:
                        out.write(f"{run},{isolation},{produced[key]},{at - produced[key]:.1f}\n")
        latencies = sorted(
            at - produced[key]
            for key, at in receiver.arrived.items()
            if key in produced and produced[key] >= warm
        )
        if not latencies:
            raise fail(running, f"no price_spike signals read {isolation}")
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        results.append(
            Latency(
                isolation,
                statistics.median(latencies),
                p99,
                len(latencies),
                total / produced_in,
                cores,
                broker_cores,
                own_cores,
            )
        )
    return results


@dataclass(frozen=True)
class Variant:
    """One way of running the jobs: ``source`` replaces the ``chorus_flink`` package."""

    label: str
    source: Path | None
    options: dict[str, str]


def options_from(items: list[str]) -> dict[str, str]:
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--set {item}: expected KEY=VALUE")
        found[key.strip()] = value.strip()
    return found


@app.command()
def main(
    events: Annotated[int, typer.Option(help="events per throughput run")] = 200_000,
    runs: Annotated[int, typer.Option(help="throughput runs per job and parallelism")] = 1,
    rate: Annotated[int, typer.Option(help="trades/s in the latency run")] = 200,
    seconds: Annotated[int, typer.Option(help="latency run: seconds of timed trades")] = 30,
    warmup: Annotated[
        int, typer.Option(help="latency run: seconds of trades first, sent but not timed")
    ] = 10,
    spike_every: Annotated[
        int,
        typer.Option(
            help="latency run: one trade in N (at random) a spike, default threshold; 0: "
            "threshold 0, every trade a signal"
        ),
    ] = 0,
    latency_parallelism: Annotated[int, typer.Option()] = 2,
    latency_runs: Annotated[int, typer.Option(help="latency runs per variant")] = 1,
    latency_trace: Annotated[
        Path | None,
        typer.Option(help="append each timed trade (run, consumer, produced ms, latency ms)"),
    ] = None,
    buffer_timeout: Annotated[str, typer.Option(help="execution.buffer-timeout.interval")] = (
        "10 ms"
    ),
    checkpoint: Annotated[str, typer.Option(help="checkpoint interval")] = "1 s",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="extra Flink option KEY=VALUE")
    ] = None,
    skip_latency: Annotated[bool, typer.Option()] = False,
    parallelisms: Annotated[str, typer.Option(help="comma-separated throughput runs")] = "1,2",
    baseline_src: Annotated[
        Path | None,
        typer.Option(help="also run each job with the chorus_flink package in this directory"),
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            help="also run each job with these Flink options, KEY=VALUE[;KEY=VALUE]; each "
            "--compare is one more variant"
        ),
    ] = None,
    jobs: Annotated[
        str,
        typer.Option(help="comma-separated, of trading,maintenance,customer_service,traffic,icu"),
    ] = "trading,maintenance",
) -> None:
    extra = options_from(set_ or [])
    chosen = [j for j in jobs.split(",") if j]  # --jobs "": latency only
    for job in chosen:
        if job not in INPUTS:
            raise typer.BadParameter(f"--jobs {job}: expected one of {', '.join(INPUTS)}")
    variants = [Variant("current", None, {})]
    if baseline_src is not None:
        variants.insert(0, Variant("baseline", baseline_src.resolve(), {}))
    for item in compare or []:  # each --compare is a variant; ';' joins options in one
        variants.append(Variant(f"current, {item}", None, options_from(item.split(";"))))
    with KafkaService().session() as kafka, FlinkService().session() as flink:
        table = Table(title=f"Flink jobs: {events:,} events, bounded, 2 partitions, medians")
        for column in (
            "job",
            "variant",
            "parallelism",
            "wall s",
            "events/s (wall)",
            "events/s (steady)",
            "events per CPU s",
            "per CPU s (steady)",
            "signals",
            "dead letters",
            "python consumer",
            "ratio",
        ):
            # the job's name whole (customer_service): rich shrinks the others to fit instead
            whole = column == "job"
            table.add_column(
                column, justify="right", min_width=16 if whole else None, no_wrap=whole
            )
        for job in chosen:
            given = INPUTS[job]
            run = uuid.uuid4().hex[:6]
            source = f"bench.{job}.{run}"
            create_topics(kafka, [source], partitions=2)
            load(kafka, source, given.make(events))
            baseline = None
            if job == "trading":
                baseline = statistics.median(
                    python_vwap(kafka, source, events) for _ in range(max(1, runs))
                )
            for parallelism in [int(p) for p in parallelisms.split(",")]:
                results: dict[str, list[Throughput]] = {v.label: [] for v in variants}
                for attempt in range(runs):
                    for variant in variants:  # interleaved, so load drift hits each alike
                        out = f"{source}.{parallelism}.{attempt}.{variants.index(variant)}"
                        create_topics(kafka, [f"{out}.signals", f"{out}.dlq"], partitions=2)
                        config = {
                            **given.config,
                            "bootstrap_servers": kafka.bootstrap_servers,
                            given.topic_key: source,
                            "signals_topic": f"{out}.signals",
                            "dead_letter_topic": f"{out}.dlq",
                            "group_id": f"bench-{job}-{run}-{parallelism}-{attempt}-"
                            f"{variants.index(variant)}",
                        }
                        options = {
                            "parallelism.default": str(parallelism),
                            "execution.checkpointing.interval": "5 s",
                            **extra,
                            **variant.options,
                        }
                        found = run_bounded(
                            kafka, flink, job, config, options, events, variant.source
                        )
                        results[variant.label].append(found)
                        console.log(f"{job} p={parallelism} {variant.label}: {found}")
                for variant in variants:
                    done = results[variant.label]
                    wall = statistics.median(r.wall for r in done)
                    steady = statistics.median(r.steady for r in done)
                    table.add_row(
                        job,
                        variant.label,
                        str(parallelism),
                        f"{wall:.1f}",
                        f"{events / wall:,.0f}",
                        f"{steady:,.0f}",
                        f"{events / statistics.median(r.cpu for r in done):,.0f}",
                        f"{statistics.median(r.steady_per_cpu for r in done):,.0f}",
                        str(done[0].signals),
                        str(max(r.dead_letters for r in done)),
                        "" if baseline is None else f"{baseline:,.0f}",
                        "" if baseline is None else f"{steady / baseline:.2f}x",
                    )
        console.print(table)
        if skip_latency:
            return
        lat_table = Table(
            title=(
                f"trading latency, trade to price_spike signal: {rate}/s for {seconds} s "
                f"after {warmup} s, "
                f"parallelism {latency_parallelism}, buffer timeout {buffer_timeout}, "
                f"checkpoint {checkpoint}"
            )
        )
        columns = ("variant", "consumer", "trades/s", "job cores", "broker cores")
        for column in (*columns, "benchmark cores", "p50 ms", "p99 ms", "signals"):
            lat_table.add_column(column, justify="right")
        for attempt in range(latency_runs):
            for variant in variants:  # interleaved, as the throughput runs
                latency = run_latency(
                    kafka,
                    flink,
                    parallelism=latency_parallelism,
                    rate=rate,
                    seconds=seconds,
                    warmup=warmup,
                    spike_every=spike_every,
                    options={
                        "execution.buffer-timeout.interval": buffer_timeout,
                        "execution.checkpointing.interval": checkpoint,
                        **extra,
                        **variant.options,
                    },
                    tree=variant.source,
                    trace=latency_trace,
                )
                for row in latency:
                    console.log(f"latency run {attempt + 1} {variant.label}: {row}")
                    lat_table.add_row(
                        variant.label,
                        row.isolation,
                        f"{row.rate:,.0f}",
                        f"{row.cores:.2f}",
                        f"{row.broker_cores:.2f}",
                        f"{row.own_cores:.2f}",
                        f"{row.p50:.0f}",
                        f"{row.p99:.0f}",
                        str(row.count),
                    )
        console.print(lat_table)


if __name__ == "__main__":
    app()
