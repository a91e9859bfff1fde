"""Installs every test service and tool before pytest starts, with progress.

The long one-time builds (the kube-apiserver and kubectl from ``k8s.io/kubernetes``, helm
from its Go module, Kafka's and Flink's jars from Maven Central) run here, once, and are
cached; a pytest fixture then only starts what is installed, within pytest's timeout.
After installing, each step checks that nothing is missing (:meth:`Service.check`), so a
service never starts half-made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from tests.services import service
from tests.services.base import ServiceError


@dataclass(frozen=True)
class Step:
    """One thing to install: what it does, how long its first time takes, and how."""

    name: str
    what: str
    first_time: str
    install: Callable[[], object]
    check: Callable[[], object]
    """Raises ServiceError unless installed; what it returns is not used."""


def _service_step(name: str, what: str, first_time: str) -> Step:
    made = service(name)
    return Step(name, what, first_time, made.install, made.check)


def _helm_step() -> Step:
    from tests.services.helm import HELM_VERSION, check_helm, install_helm

    return Step(
        "helm",
        f"helm {HELM_VERSION} (go install from the Go module proxy)",
        "about 2 minutes",
        install_helm,
        check_helm,
    )


def _cluster_step() -> Step:
    from tests.services.cluster import build, host

    def install() -> None:
        host.preflight()  # root and the Debian packages, named when missing
        build.install(print)

    def check() -> None:
        host.preflight()
        build.check()

    return Step(
        "cluster",
        "the one-node cluster's binaries and images (go build of k8s.io/kubernetes, CoreDNS)",
        "about 15 minutes on 2 cores",
        install,
        check,
    )


def _images_step() -> Step:
    from tests.services.images.build import check, install

    return Step(
        "images",
        "the stand-in python base (debootstrap) and the agent and operator images (buildah)",
        "about 4 minutes on 2 cores",
        install,
        check,
    )


def _pulumi_step() -> Step:
    from tests.services.pulumi import check_pulumi, install_pulumi

    return Step(
        "pulumi",
        "the Pulumi CLI and its Kubernetes provider (go build from the Go module proxy)",
        "about 25 minutes on 2 cores",
        install_pulumi,
        check_pulumi,
    )


def steps() -> list[Step]:
    """Everything the test command needs, cheapest first."""
    return [
        _service_step("kafka", "Kafka broker jars (Maven Central)", "under a minute"),
        _service_step(
            "flink", "flink/ environment and the Kafka SQL connector jar", "about a minute"
        ),
        _helm_step(),
        _service_step(
            "kube",
            "kube-apiserver and kubectl (go build of k8s.io/kubernetes)",
            "5 to 10 minutes on 2 cores",
        ),
        _cluster_step(),
        _images_step(),
        _pulumi_step(),
    ]


@contextmanager
def heartbeat(console: Console, what: str, every: float = 30.0) -> Iterator[None]:
    """A spinner with the time so far on a terminal; elsewhere (CI logs) a line every
    ``every`` seconds."""
    started = time.monotonic()
    stop = threading.Event()
    with console.status(what) if console.is_terminal else nullcontext() as status:

        def tick() -> None:
            while not stop.wait(1.0 if status is not None else every):
                elapsed = f"{time.monotonic() - started:.0f}s"
                if status is not None:
                    status.update(f"{what}  {elapsed}")
                else:
                    console.print(f"  ... {what}: {elapsed}")

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def chosen_steps(names: Sequence[str]) -> list[Step]:
    """The steps called ``names``, in order (every step when none is named). A KeyError
    names any step there is not."""
    chosen = [step for step in steps() if not names or step.name in names]
    unknown = set(names) - {step.name for step in chosen}
    if unknown:
        raise KeyError(f"nothing to prepare called {', '.join(sorted(unknown))}")
    return chosen


def prepare(names: Sequence[str], console: Console) -> list[tuple[str, str]]:
    """Installs and checks the named steps (when empty: all of them); returns
    ``(name, error)`` of each that failed, after trying every one."""
    chosen = chosen_steps(names)
    failures: list[tuple[str, str]] = []
    table = Table("prepared", "state", "seconds")
    for step in chosen:
        started = time.monotonic()
        cached = _passes(step.check)
        try:
            if not cached:
                console.print(
                    f"{step.name}: installing {step.what} (first time: {step.first_time})"
                )
            with heartbeat(console, f"{step.name}: {step.what}") if not cached else nullcontext():
                step.install()  # also when cached: a changed lock or pom installs anew
            step.check()
            state = "[green]cached[/]" if cached else "[green]installed[/]"
        except ServiceError as exc:
            failures.append((step.name, str(exc)))
            state = "[red]failed[/]"
        table.add_row(step.name, state, f"{time.monotonic() - started:.1f}")
    console.print(table)
    for name, error in failures:
        console.print(f"[red]{name}[/]: {error}", markup=True, highlight=False)
    return failures


def _passes(check: Callable[[], object]) -> bool:
    try:
        check()
    except ServiceError:
        return False
    return True
