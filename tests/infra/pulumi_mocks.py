"""Runs the Pulumi program under Pulumi's own mocks and records what it declares.

The mock monitor keeps, for every registered resource, its type, name, inputs, parent, the
URNs it depends on (explicit ``depends_on`` plus the inputs' resources, as the engine sees
them) and its custom timeouts, so tests can assert the resource graph, not just the inputs.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
from chorus_infra.config import StackConfig
from chorus_infra.program import run
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

COMPONENT_TYPES = {
    "chorus:kafka:KafkaPlatform",
    "chorus:flink:FlinkPlatform",
    "chorus:operator:Chorus",
    "chorus:gitops:GitOps",
}
RELEASE = "kubernetes:helm.sh/v3:Release"
KUSTOMIZE = "kubernetes:kustomize/v2:Directory"


@dataclass
class Recorded:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    dependencies: set[str]
    custom: bool
    create_timeout: str

    @property
    def is_k8s_object(self) -> bool:
        """A plain Kubernetes object (not a Helm release, kustomization or component)."""
        return self.custom and self.type.startswith("kubernetes:") and self.type != RELEASE


@dataclass
class Rendering:
    records: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[Recorded]:
        return [item for item in self.records if item.type == type_]

    def named(self, name: str) -> Recorded:
        found = [item for item in self.records if item.name == name]
        assert len(found) == 1, f"{len(found)} resources named {name!r}"
        return found[0]

    def objects(self) -> Iterator[Recorded]:
        return (item for item in self.records if item.is_k8s_object)

    def depends_on(self, dependent: str, dependency: str) -> bool:
        """Whether ``dependent`` waits for ``dependency`` (directly or through others)."""
        by_urn = {item.urn: item for item in self.records}
        target, seen = self.named(dependency).urn, set()
        todo = [self.named(dependent).urn]
        while todo:
            urn = todo.pop()
            for next_urn in by_urn[urn].dependencies if urn in by_urn else ():
                if next_urn == target:
                    return True
                if next_urn not in seen:
                    seen.add(next_urn)
                    todo.append(next_urn)
        return False


class RecordingMocks(Mocks):
    """Answers as the Kubernetes provider would: ids are ``<namespace>/<name>`` or ``<name>``,
    and the state is the inputs (so outputs that echo inputs resolve)."""

    def __init__(self) -> None:
        self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[(args.typ, args.name)] = copy.deepcopy(args.inputs)
        metadata = args.inputs.get("metadata") or {}
        namespace = metadata.get("namespace") or args.inputs.get("namespace")
        name = metadata.get("name") or args.inputs.get("name") or args.name
        return (f"{namespace}/{name}" if namespace else str(name)), dict(args.inputs)

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording_mocks = mocks
        self.records: list[Recorded] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.records.append(
                Recorded(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=self.recording_mocks.inputs.get((request.type, request.name), {}),
                    dependencies=set(request.dependencies),
                    custom=bool(request.custom),
                    create_timeout=request.customTimeouts.create,
                )
            )
        return response


class MockedStack:
    """Fresh mocks for one stack; ``rendering`` fills in as the program registers resources."""

    def __init__(self, stack: str) -> None:
        # Pulumi's mocks run on the thread's current event loop; a test elsewhere that ended
        # with asyncio.run() leaves none set, so each stack gets its own.
        asyncio.set_event_loop(asyncio.new_event_loop())
        mocks = RecordingMocks()
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_mocks(
            mocks, project="chorus", stack=stack, preview=False, monitor=monitor
        )
        self.rendering = Rendering(records=monitor.records)

    def run(self, program: Callable[[], Any]) -> Rendering:
        """Runs ``program`` (which declares resources and returns outputs) to completion."""
        rendering = self.rendering

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def body() -> Any:
            return pulumi.Output.from_input(program()).apply(
                lambda resolved: rendering.outputs.update(resolved or {})
            )

        body()
        return rendering


def under_mocks(program: Callable[[], Any], stack: str) -> Rendering:
    return MockedStack(stack).run(program)


def render(config: StackConfig) -> Rendering:
    """The whole program for one stack configuration, with its resolved stack outputs."""
    return under_mocks(lambda: run(config), stack=config.environment)
