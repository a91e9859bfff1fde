"""``chorus agent run``: the agent container's entry point.

Loads ``runtime.yaml`` (:func:`chorus_api.runtime.load_runtime_config`), runs an
:class:`~chorus_agents.host.AgentHost` until SIGTERM or SIGINT, then stops it gracefully:
no new input, running requests get the grace period, the open transaction is committed
(or, when it cannot be, aborted by the broker's fencing at the next start).

When Kafka refuses the agent access (ACLs not granted yet, say) the run is retried with
a growing pause, 5 s up to 5 min, never in a hot loop; any other failure ends the
process with exit code 1 (the kubelet restarts it, with its own back-off).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from chorus_api.runtime import DEFAULT_CONFIG_PATH, RuntimeConfigError, load_runtime_config
from confluent_kafka import KafkaError, KafkaException

from chorus_agents.binding.writer import AUTHORIZATION_ERRORS, TransactionFailed
from chorus_agents.cli.options import KafkaOptions, kafka_options
from chorus_agents.host import AgentHost, kafka_settings
from chorus_agents.kafka import CredentialsError
from chorus_agents.logs import setup_logging

log = logging.getLogger("chorus_agents.cli.agent")

app = typer.Typer(help="Run an agent.", no_args_is_help=True)

FIRST_BACKOFF = 5.0
MAX_BACKOFF = 300.0


@app.command("run")
def run(
    config: Annotated[
        Path,
        typer.Option("--config", "-c", envvar="CHORUS_CONFIG", help="The runtime.yaml to run."),
    ] = DEFAULT_CONFIG_PATH,
    kafka_option: KafkaOptions = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Runs the agent described by the runtime config until SIGTERM or SIGINT."""
    try:
        runtime = load_runtime_config(config)
    except RuntimeConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    setup_logging(agent=runtime.agent.key, level=log_level)
    try:
        # Reads Secret references through the Kubernetes API (in a pod) once, at start.
        kafka = kafka_settings(runtime, **kafka_options(kafka_option))
    except CredentialsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    code = asyncio.run(_serve(lambda: AgentHost(runtime, kafka_config=kafka)))
    raise typer.Exit(code)


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` says Kafka refused access (an ACL, a SASL login)."""
    if isinstance(exc, TransactionFailed):
        return exc.authorization
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].code() in AUTHORIZATION_ERRORS
    return False


async def _serve(make: Callable[[], AgentHost]) -> int:
    """Runs hosts made by ``make()`` until a signal; returns the exit code."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    backoff = FIRST_BACKOFF
    while not stopping.is_set():
        host = make()
        try:
            await host.start()
            backoff = FIRST_BACKOFF
            loop_done = asyncio.ensure_future(host.wait())
            stop_asked = asyncio.ensure_future(stopping.wait())
            await asyncio.wait({loop_done, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
            stop_asked.cancel()
            if stopping.is_set():
                log.info("stopping: finishing running requests and the open transaction")
            await host.stop()
            loop_done.result()
            if stopping.is_set():
                return 0
            log.error("the Kafka loop ended on its own")
            return 1
        except Exception as exc:
            await _quietly_stop(host)
            if not refused(exc):
                log.exception("the agent failed")
                return 1
            log.error(
                "Kafka refuses the agent access (%s); check its KafkaUser's ACLs; "
                "retrying in %.0fs",
                exc,
                backoff,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
    return 0


async def _quietly_stop(host: AgentHost) -> None:
    try:
        await host.stop()
    except Exception:  # the failure that got us here was logged; this one adds nothing
        log.debug("stopping after a failure", exc_info=True)
