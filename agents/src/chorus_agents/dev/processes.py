"""The local processes of ``chorus dev up``: MCP servers, Flink jobs, agents.

Each runs in its own process group (a Flink driver's mini-cluster JVM goes with it), its
output in ``<workdir>/logs/<name>.log``. :class:`Processes` starts them, waits until each
is ready (an MCP server answers ``tools/list``, an agent's ``/readyz`` is 200), notices one
that dies, and stops them in the reverse order they started: SIGTERM to the group (an
agent finishes its transaction), then SIGKILL after a grace period. Nothing outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from chorus_api.agent import Agent
from chorus_api.runtime import runtime_config_yaml
from chorus_api.streams import resolve_stream
from chorus_api.tool import Tool
from chorus_api.topics import stream_group

from chorus_agents.dev.config import runtime_config_for
from chorus_agents.dev.services.base import ServiceError, free_port, log_tail, wait_until
from chorus_agents.dev.services.flink import FLINK, FlinkEnv

CHECKPOINT_INTERVAL = "1 s"
"""Short, so read_committed consumers (the agents) see a signal about a second after it."""


@dataclass
class Child:
    """One started process: its name (``agent/risk``), the Popen, and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None


def chorus_command() -> list[str]:
    """How to run the ``chorus`` CLI of this interpreter's environment."""
    beside = Path(sys.executable).with_name("chorus")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chorus")
    return [found] if found else [sys.executable, "-m", "chorus_agents.cli"]


def server_args(tool: Tool, port: int) -> list[str]:
    """The Tool's ``mcp.server.args`` with its port replaced by ``port``, on loopback.

    ``chorus`` is the runtime image's entrypoint, so the args are ``chorus``'s; the
    ``--port`` value is replaced (or added), and ``--host 127.0.0.1`` added.
    """
    server = tool.spec.mcp.server
    if server is None:
        raise ServiceError(f"tool {tool.metadata.name}: has no mcp.server to run locally")
    args = [str(a) for a in server.args]
    if "--port" in args:
        args[args.index("--port") + 1] = str(port)
    else:
        args += ["--port", str(port)]
    if "--host" not in args:
        args += ["--host", "127.0.0.1"]
    return args


async def _list_tools(url: str) -> list[str]:
    from mcp.client.client import Client

    async with Client(url) as client:
        listed = await client.list_tools()
    return [tool.name for tool in listed.tools]


async def _call_tool(url: str, name: str, arguments: Mapping[str, Any]) -> Any:
    from mcp.client.client import Client

    async with Client(url) as client:
        result = await client.call_tool(name, dict(arguments))
    if result.is_error:
        raise ServiceError(f"{url}: {name}({arguments}) failed: {result.content}")
    return result.structured_content


def call_tool(url: str, name: str, arguments: Mapping[str, Any]) -> Any:
    """Calls one tool of the MCP server at ``url`` (setting a scene before the feed)."""
    return asyncio.run(_call_tool(url, name, arguments))


class Processes:
    """The run's child processes; a context manager that stops them all on exit."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.tool_urls: dict[str, str] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def spawn(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        log = self.logs / f"{name.replace('/', '-')}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(cmd),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def start_tool(self, tool: Tool, *, bootstrap: str | None = None, timeout: float = 60.0) -> str:
        """Starts the Tool's MCP server on a free port; returns its URL once it lists tools.

        ``bootstrap`` (the run's broker) is given to the server as
        ``CHORUS_BOOTSTRAP_SERVERS``, as the Tool's env gives it the cluster's (a server
        that reads Kafka, such as the ICU clinical server's vitals feed, uses it).
        """
        port = free_port()
        path = tool.spec.mcp.server.path if tool.spec.mcp.server is not None else "/mcp"
        url = f"http://127.0.0.1:{port}{path or '/mcp'}"
        command = [*chorus_command(), *server_args(tool, port)]
        env = {**os.environ, "CHORUS_BOOTSTRAP_SERVERS": bootstrap} if bootstrap else None
        child = self.spawn(f"tool/{tool.metadata.name}", command, env=env)
        wait_until(
            lambda: bool(asyncio.run(_list_tools(url))),
            what=f"tool {tool.metadata.name}: tools/list at {url}",
            timeout=timeout,
            process=child.process,
            log=child.log,
            interval=0.5,
        )
        self.tool_urls[tool.metadata.name] = url
        return url

    def start_streams(
        self, agent: Agent, flink: FlinkEnv, bootstrap: str, namespace: str
    ) -> list[Child]:
        """Starts each of the agent's streams as an unbounded job in its own mini-cluster."""
        started = []
        for stream in agent.spec.streams:
            resolved = resolve_stream(stream)
            name = f"stream/{agent.metadata.name}-{stream.name}"
            config = {
                **resolved.config,
                "bootstrap_servers": bootstrap,
                "group_id": stream_group(namespace, f"{agent.metadata.name}-{stream.name}"),
            }
            checkpoints = self.workdir / "checkpoints" / stream.name
            settings = {
                "parallelism.default": str(max(1, stream.parallelism)),
                "execution.checkpointing.interval": CHECKPOINT_INTERVAL,
                "execution.checkpointing.dir": checkpoints.as_uri(),
            }
            args = ["-m", "chorus_flink.run", stream.job, "--config", json.dumps(config)]
            for key, value in settings.items():
                args += ["--set", f"{key}={value}"]
            logs = self.logs / name.replace("/", "-")
            logs.mkdir(parents=True, exist_ok=True)
            started.append(
                self.spawn(name, [flink.python, *args], env=flink.environment(logs), cwd=FLINK)
            )
        return started

    def start_agent(
        self,
        agent: Agent,
        *,
        bootstrap: str,
        tools: Mapping[str, Tool],
        namespace: str,
        config_maps: Mapping[str, Mapping[str, str]] | None = None,
    ) -> tuple[Child, int]:
        """Writes the agent's runtime config and starts ``chorus agent run``; returns its port.
        ``config_maps`` are the domain's (a ``model.scriptFrom`` is read from them)."""
        port = free_port()
        config = runtime_config_for(
            agent,
            bootstrap,
            self.tool_urls,
            tools=tools,
            config_maps=config_maps,
            namespace=namespace,
            http_port=port,
        )
        path = self.workdir / "agents" / f"{agent.metadata.name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(runtime_config_yaml(config))
        child = self.spawn(
            f"agent/{agent.metadata.name}",
            [*chorus_command(), "agent", "run", "--config", str(path)],
        )
        return child, port

    def wait_ready(self, child: Child, port: int, *, timeout: float = 90.0) -> None:
        """Waits until the agent answers 200 on ``/readyz``."""
        url = f"http://127.0.0.1:{port}/readyz"
        wait_until(
            lambda: httpx.get(url, timeout=2).status_code == 200,
            what=f"{child.name}: {url}",
            timeout=timeout,
            process=child.process,
            log=child.log,
            interval=0.5,
        )

    def dead(self) -> list[Child]:
        """Children that have exited."""
        return [c for c in self.children if not c.alive()]

    def describe_death(self, child: Child) -> str:
        return f"{child.name} exited with {child.process.returncode}\n{log_tail(child.log, 30)}"

    def pids(self) -> list[int]:
        return [c.process.pid for c in self.children if c.alive()]

    def stop(self, names: Sequence[str] | None = None, *, grace: float = 20.0) -> None:
        """SIGTERM (then SIGKILL) the named children's groups, or all, newest first."""
        chosen = [
            c
            for c in reversed(self.children)
            if names is None or any(c.name.startswith(n) for n in names)
        ]
        for child in chosen:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The leader may be gone while the group lives on (a mini-cluster JVM).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)
        self.children = [c for c in self.children if c not in chosen]

    def stop_all(self) -> None:
        self.stop(None)
