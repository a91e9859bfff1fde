"""Runs one Chorus Flink job: the one entry point for local runs and for the cluster.

    python -m chorus_flink.run windowed_counts --config '{"bootstrap_servers": ...}'
    python -m chorus_flink.run chorus_flink.jobs.windowed_counts --config @job.json \\
        --set parallelism.default=2

Locally this starts a Flink mini-cluster in a JVM child of this process and waits for the
job to end (a bounded job ends by itself). On Kubernetes, the PythonDriver runs the same
module (``-pym chorus_flink.run``) and the jars are already on the image's classpath.

The connector jar(s) come from ``--jar`` or ``CHORUS_FLINK_CONNECTOR_JAR`` (several
separated by ``;``) and are set as ``pipeline.jars``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from pyflink.table import EnvironmentSettings, StatementSet, StreamTableEnvironment

JAR_ENV = "CHORUS_FLINK_CONNECTOR_JAR"
DEFAULTS = {
    "pipeline.object-reuse": "true",
    "execution.buffer-timeout.interval": "10 ms",
    "pipeline.auto-watermark-interval": "50 ms",
}
"""Options set unless given (``--set``, or the cluster's configuration, e.g. a FlinkDeployment's
``flinkConfiguration``); each measured in docs/benchmarks.md.

- Object reuse: chained operators hand a row on instead of copying it for each reader. The
  jobs' source chain feeds three readers (dead letters, the window, the spike function), and
  the copies were a fifth of the trading job's CPU; it gave 1.2x events per CPU second. Safe
  here: Flink's SQL operators are written for it, and Chorus' Java functions keep no
  reference to an input row (they copy the values they keep).
- A network buffer leaves after at most 10 ms (Flink: 100 ms), and periodic watermarks come
  every 50 ms (Flink: 200 ms): a signal waits for both. At 50,000 trades/s the trading job's
  p50 went from about 220 ms to 60 ms and its p99 from about 340 ms to 160 ms, at no CPU
  cost measurable there."""


class Job(Protocol):
    """A job module: ``build`` wires tables and statements; it does not execute them."""

    def build(self, t_env: StreamTableEnvironment, config: Mapping[str, Any]) -> StatementSet: ...


def load_job(name: str) -> Job:
    """The job module ``name``; a bare name means ``chorus_flink.jobs.<name>``."""
    module_name = name if "." in name else f"chorus_flink.jobs.{name}"
    module = importlib.import_module(module_name)
    if not callable(getattr(module, "build", None)):
        raise SystemExit(f"job {module_name}: has no build(t_env, config)")
    return cast(Job, module)


def load_config(text: str) -> dict[str, Any]:
    """A JSON object, given inline or as ``@path``."""
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise SystemExit("--config: expected a JSON object")
    return config


def jar_urls(jars: Sequence[str]) -> str:
    """``pipeline.jars`` wants ``;``-separated URLs; check each file exists first."""
    urls = []
    for jar in jars:
        path = Path(jar).resolve()
        if not path.is_file():
            raise SystemExit(f"connector jar {jar}: no such file")
        urls.append(path.as_uri())
    return ";".join(urls)


def table_environment(jars: Sequence[str], options: Mapping[str, str]) -> StreamTableEnvironment:
    """A streaming table environment with ``jars`` on the pipeline, ``options`` set, and
    :data:`DEFAULTS` where neither ``options`` nor the cluster set them."""
    t_env = StreamTableEnvironment.create(
        environment_settings=EnvironmentSettings.in_streaming_mode()
    )
    table_config = t_env.get_config()
    if jars:
        table_config.set("pipeline.jars", jar_urls(jars))
    for key, value in options.items():
        table_config.set(key, value)
    for key, value in DEFAULTS.items():
        if table_config.get(key, "") == "":  # reads the cluster's configuration too
            table_config.set(key, value)
    return t_env


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chorus_flink.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job", help="job module, e.g. windowed_counts or a.b.module")
    parser.add_argument("--config", default="{}", help="job config: JSON, or @file")
    parser.add_argument(
        "--jar",
        action="append",
        default=[],
        help=f"extra jar for pipeline.jars (default: ${JAR_ENV})",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Flink configuration option",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="submit and return instead of waiting for the job to end",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    jars = args.jar or [j for j in os.environ.get(JAR_ENV, "").split(";") if j]
    options = {"pipeline.name": args.job}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item}: expected KEY=VALUE")
        options[key.strip()] = value.strip()
    job = load_job(args.job)
    t_env = table_environment(jars, options)
    result = job.build(t_env, load_config(args.config)).execute()
    client = result.get_job_client()
    job_id = client.get_job_id() if client is not None else "?"
    print(f"chorus_flink.run: job {args.job} submitted as {job_id}", flush=True)
    if not args.detach:
        result.wait()
        print(f"chorus_flink.run: job {args.job} ({job_id}) finished", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
